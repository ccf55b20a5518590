package file

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// archiveLines returns the record lines the archive holds, in order.
func archiveLines(t *testing.T, cfg Config) []string {
	t.Helper()
	names := []string{cfg.Path}
	if cfg.Dir {
		names, _ = filepath.Glob(filepath.Join(cfg.Path, "audit-*"))
		slices.Sort(names)
	}
	var out []string
	for _, n := range names {
		var text string
		if cfg.Gzip {
			text, _ = gunzip(t, n)
		} else {
			text = readFile(t, n)
		}
		for _, l := range strings.Split(text, "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// sendAny sends rs and fails only on an error.
func sendAny(t *testing.T, s *Sink, rs []sink.Record) sink.Result {
	t.Helper()
	res, err := s.Send(t.Context(), rs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func lineStrings(rs []sink.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r.Line))
	}
	return out
}

// TestResumeExactlyOnce: a sink started on an archive that already holds
// what it is sent (a rerun after the acks were lost) skips those records
// as Duplicate, writes the rest, and the archive holds every record once;
// a record of another chain at a seq the archive holds is a Conflict and
// nothing is written.
func TestResumeExactlyOnce(t *testing.T) {
	const ts0 = day1
	chain := sinktest.Records(400, 300, ts0, "")
	other := sinktest.Records(400, 300, ts0, strings.Repeat("b", 64))
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"plain file", Config{Path: "a.ndjson"}},
		{"gzip file", Config{Path: "a.ndjson.gz", Gzip: true}},
		{"plain dir", Config{Path: "arch", Dir: true}},
		{"gzip dir", Config{Path: "arch", Dir: true, Gzip: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Path = filepath.Join(t.TempDir(), cfg.Path)
			s1 := newSink(t, cfg)
			for i := 0; i < 300; i += 100 { // seqs 40..339
				if res := send(t, s1, chain[i:i+100]); !slices.Equal(res.Status, slices.Repeat([]sink.Status{sink.Delivered}, 100)) {
					t.Fatalf("run 1: %v", res.Status)
				}
			}
			s1.Close()

			// The rerun starts from an older cursor: 140..339 again, then new.
			s2 := newSink(t, cfg)
			var dups, delivered int
			for i := 100; i < 400; i += 100 {
				for _, st := range sendAny(t, s2, chain[i:i+100]).Status {
					switch st {
					case sink.Duplicate:
						dups++
					case sink.Delivered:
						delivered++
					default:
						t.Fatalf("status %v", st)
					}
				}
			}
			if dups != 200 || delivered != 100 {
				t.Fatalf("%d duplicates, %d delivered; want 200, 100", dups, delivered)
			}
			s2.Close()
			if got := archiveLines(t, cfg); !slices.Equal(got, lineStrings(chain)) {
				t.Fatalf("archive holds %d lines, want each of %d records once", len(got), len(chain))
			}

			// Another chain: refused, nothing written.
			s3 := newSink(t, cfg)
			res, err := s3.Send(t.Context(), other[250:300])
			var se *sink.Error
			if !errors.As(err, &se) || se.Class != sink.Conflict {
				t.Fatalf("want a Conflict, got %v", err)
			}
			if slices.ContainsFunc(res.Status, func(s sink.Status) bool { return s != sink.Pending }) {
				t.Fatalf("statuses %v", res.Status)
			}
			if msg := err.Error(); !strings.Contains(msg, "seq 290") || !strings.Contains(msg, other[250].Hash) || !strings.Contains(msg, chain[250].Hash) {
				t.Fatalf("message: %s", msg)
			}
			if got := archiveLines(t, cfg); len(got) != len(chain) {
				t.Fatalf("archive changed: %d lines", len(got))
			}

			// Another chain past the archive's end: its first record does
			// not link to the archive's last one.
			next := other[0]
			next.Seq = chain[len(chain)-1].Seq + 1
			s4 := newSink(t, cfg)
			_, err = s4.Send(t.Context(), []sink.Record{next})
			if !errors.As(err, &se) || se.Class != sink.Conflict || !strings.Contains(err.Error(), "does not continue the archive") {
				t.Fatalf("want a Conflict for a record that does not link, got %v", err)
			}
			if got := archiveLines(t, cfg); len(got) != len(chain) {
				t.Fatalf("archive changed: %d lines", len(got))
			}
		})
	}
}

// TestResumeAfterTornTail: a plain archive ending in a torn line (a crash
// mid-append) still tells what it holds.
func TestResumeAfterTornTail(t *testing.T) {
	chain := sinktest.Records(50, 300, day1, "")
	cfg := Config{Path: filepath.Join(t.TempDir(), "a.ndjson")}
	s1 := newSink(t, cfg)
	send(t, s1, chain[:30])
	s1.Close()
	f, _ := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(chain[30].Line[:77])
	f.Close()
	s2 := newSink(t, cfg)
	res := sendAny(t, s2, chain[20:50])
	want := append(slices.Repeat([]sink.Status{sink.Duplicate}, 10), slices.Repeat([]sink.Status{sink.Delivered}, 20)...)
	if !slices.Equal(res.Status, want) {
		t.Fatalf("statuses %v", res.Status)
	}
	got := archiveLines(t, cfg)
	if len(got) != 51 || got[30] != string(chain[30].Line[:77]) || got[31] != string(chain[30].Line) {
		t.Fatalf("archive: %d lines", len(got))
	}
}

// TestBackwards reads lines from the end, across chunk borders.
func TestBackwards(t *testing.T) {
	long := strings.Repeat("x", 3<<20) // spans chunks
	text := "a\n" + long + "\nb\n\nc"
	var got []string
	err := backwards(strings.NewReader(text), int64(len(text)), func(l []byte) bool {
		got = append(got, string(l))
		return true
	})
	if err != nil || !slices.Equal(got, []string{"c", "b", long, "a"}) {
		t.Fatalf("%v %d lines", err, len(got))
	}
}
