package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// report formats the table the suite ends with.
func report(rs []*result, cfg config, elapsed time.Duration) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "auditpipe chaos: seed %d, %v of faults per SIEM, SIEMs in parallel, %.1fs in all\n\n", cfg.seed, cfg.duration, elapsed.Seconds())
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "fault (episodes)\t"
	for _, r := range rs {
		head += r.kind + "\t"
	}
	fmt.Fprintln(tw, head+"total\t")

	names := map[string]bool{}
	for _, r := range rs {
		for k := range r.st.faults {
			names[k] = true
		}
	}
	for _, f := range catalog {
		names[f.name] = true
	}
	var sorted []string
	for k := range names {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	grand := 0
	for _, k := range sorted {
		row, sum := k+"\t", 0
		for _, r := range rs {
			n := r.st.faults[k]
			if why, ok := r.st.skipped[k]; ok && n == 0 {
				row += "skipped\t"
				_ = why
				continue
			}
			applies := true
			for _, f := range catalog {
				if f.name == k && f.kinds != nil && !slices.Contains(f.kinds, r.kind) {
					applies = false
				}
			}
			if !applies {
				row += "-\t"
				continue
			}
			row += fmt.Sprintf("%d\t", n)
			sum += n
		}
		grand += sum
		fmt.Fprintf(tw, "%s%d\t\n", row, sum)
	}
	row, sum := "total faults injected\t", 0
	for _, r := range rs {
		n := 0
		for _, v := range r.st.faults {
			n += v
		}
		row += fmt.Sprintf("%d\t", n)
		sum += n
	}
	fmt.Fprintf(tw, "%s%d\t\n", row, sum)
	fmt.Fprintln(tw, "\t\t")

	respNames := map[string]bool{}
	for _, r := range rs {
		for k := range r.st.responses {
			respNames[k] = true
		}
	}
	var rsorted []string
	for k := range respNames {
		rsorted = append(rsorted, k)
	}
	sort.Strings(rsorted)
	for _, k := range rsorted {
		row, sum := "  faulty answers: "+strings.TrimPrefix(k, "http.")+"\t", 0
		for _, r := range rs {
			row += fmt.Sprintf("%d\t", r.st.responses[k])
			sum += r.st.responses[k]
		}
		fmt.Fprintf(tw, "%s%d\t\n", row, sum)
	}
	fmt.Fprintln(tw, "\t\t")

	line := func(label string, f func(r *result) int) {
		row, sum := label+"\t", 0
		for _, r := range rs {
			row += fmt.Sprintf("%d\t", f(r))
			sum += f(r)
		}
		fmt.Fprintf(tw, "%s%d\t\n", row, sum)
	}
	line("records written", func(r *result) int { return int(r.written) })
	line("delivered at least once", func(r *result) int { return r.delivered })
	line("duplicates", func(r *result) int { return r.duplicates })
	line("LOST", func(r *result) int { return r.lost })
	line("quarantined (not delivered)", func(r *result) int {
		n := 0
		for _, v := range r.quarantined {
			n += v
		}
		return n
	})
	line("quarantined, delivered on a later send", func(r *result) int { return r.qDelivered })
	line("pipeline restarts", func(r *result) int { return r.st.restarts })
	line("stages killed after 15s SIGTERM grace", func(r *result) int { return r.st.strag })
	line("invariant violations", func(r *result) int { return len(r.st.problems) })
	row = "time\t"
	for _, r := range rs {
		row += fmt.Sprintf("%.1fs\t", r.elapsed.Seconds())
	}
	fmt.Fprintf(tw, "%s%.1fs\t\n", row, elapsed.Seconds())
	tw.Flush()

	sb.WriteString("\nquarantine reasons:\n")
	for _, r := range rs {
		var keys []string
		for k := range r.quarantined {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&sb, "  %s: %d x %s\n", r.kind, r.quarantined[k], k)
		}
	}
	sb.WriteString("\nexit codes seen (code x count; -9: killed by the harness):\n")
	for _, r := range rs {
		var bins []string
		for b := range r.st.exits {
			bins = append(bins, b)
		}
		sort.Strings(bins)
		var parts []string
		for _, b := range bins {
			var codes []int
			for c := range r.st.exits[b] {
				codes = append(codes, c)
			}
			sort.Ints(codes)
			var cs []string
			for _, c := range codes {
				cs = append(cs, fmt.Sprintf("%d x%d", c, r.st.exits[b][c]))
			}
			parts = append(parts, strings.TrimPrefix(b, "audit-")+" "+strings.Join(cs, ", "))
		}
		fmt.Fprintf(&sb, "  %s: %s\n", r.kind, strings.Join(parts, "; "))
	}
	sb.WriteString("\nwhy (the last stderr line of up to 3 exits per binary and code other than 0, 141 and -9):\n")
	for _, r := range rs {
		var keys []string
		for k := range r.st.samples {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, s := range r.st.samples[k] {
				if len(s) > 300 {
					s = s[:300] + "..."
				}
				fmt.Fprintf(&sb, "  %s %s: %s\n", r.kind, k, s)
			}
		}
	}
	for _, r := range rs {
		for k, why := range r.st.skipped {
			fmt.Fprintf(&sb, "skipped %s on %s: %s\n", k, r.kind, why)
		}
	}
	_ = grand
	return sb.String()
}
