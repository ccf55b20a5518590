package auditfetch

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/checkpoint"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
)

// cpFlag is --checkpoints FILE. The file is created (empty) when the flag
// is set, so that a fetch that ends early (nothing matched) never leaves
// an old file to be taken for this store's checkpoints.
type cpFlag struct{ path string }

func (f *cpFlag) String() string { return f.path }

func (f *cpFlag) Set(v string) error {
	if v != "" {
		if err := os.WriteFile(v, nil, 0o644); err != nil {
			return err
		}
	}
	f.path = v
	return nil
}

func checkpointsFlag(fs *flag.FlagSet) *cpFlag {
	f := new(cpFlag)
	fs.Var(f, "checkpoints", "also write the checkpoint events of the selection (seal --emit-checkpoints) to this file, one {\"checkpoint\":...} line each, by size, each note once: audit-checkpoint check-store --checkpoints")
	return f
}

// checkpointIs selects each kind's checkpoint events (seal
// --emit-checkpoints; lib/sink/<kind>/checkpoint.go), which the kind's
// record filter (shape.is) never matches: they carry no seq.
var checkpointIs = map[string]string{
	"splunk":  `fields.type:="checkpoint"`,
	"elastic": `type:="checkpoint" fields.type:"" service:"" ddsource:"" hostname:""`,
	"datadog": `type:="checkpoint" fields.type:"" (service:!"" or ddsource:!"" or hostname:!"")`,
}

// maxCheckpoints bounds the checkpoint events one fetch keeps in memory
// (to sort and deduplicate them): at --every 10000 that is a log of ten
// billion records.
const maxCheckpoints = 1 << 20

// checkpoints writes the checkpoint events sel matches to path: the
// checkpoint line each carries (its _msg), one line per distinct note,
// by size (a note with more cosignatures after one with fewer). It returns
// how many it wrote.
func (q *querier) checkpoints(ctx context.Context, sel, path string) (int, error) {
	resp, err := q.post(ctx, sel+" | fields _msg")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	type cp struct {
		size int64
		line []byte
	}
	var cps []cp
	seen := map[string]bool{}
	br := bufio.NewReaderSize(resp.Body, 1<<20)
	var p fastjson.Parser
	for row := 1; ; row++ {
		raw, rerr := br.ReadSlice('\n') // a row is at most 1 MiB: a note is at most 64 KiB
		if rerr == bufio.ErrBufferFull {
			return 0, exitcode.Errorf(exitcode.Input, "checkpoint row %d of the query result is longer than 1 MiB", row)
		}
		if len(bytes.TrimSpace(raw)) > 0 {
			v, err := p.ParseBytes(raw)
			if err != nil {
				return 0, exitcode.Errorf(exitcode.Input, "checkpoint row %d of the query result: %v", row, err)
			}
			line := v.GetStringBytes("_msg")
			if !framing.IsCheckpoint(line) {
				return 0, exitcode.Errorf(exitcode.Input, "checkpoint row %d of the query result: its message is not a checkpoint line ({\"checkpoint\":...}): %.80q", row, line)
			}
			note, size, err := framing.ParseCheckpoint(nil, line)
			if err != nil {
				return 0, exitcode.Errorf(exitcode.Input, "checkpoint row %d of the query result: %v", row, err)
			}
			if !seen[string(note)] {
				seen[string(note)] = true
				if len(cps) == maxCheckpoints {
					return 0, fmt.Errorf("more than %d checkpoint events: narrow the selection with --query (a _time range)", maxCheckpoints)
				}
				// Written as seal writes --out: the note, escaped the one way.
				var b bytes.Buffer
				checkpoint.AppendCheckpoint(&b, note)
				cps = append(cps, cp{size, b.Bytes()})
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, fmt.Errorf("read query result: %w", rerr)
		}
	}
	sort.SliceStable(cps, func(i, j int) bool {
		if cps[i].size != cps[j].size {
			return cps[i].size < cps[j].size
		}
		return len(cps[i].line) < len(cps[j].line)
	})
	var out bytes.Buffer
	for _, c := range cps {
		out.Write(c.line)
	}
	// Whole or not at all: written beside it, then renamed over it.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return 0, fmt.Errorf("--checkpoints: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("--checkpoints: %w", err)
	}
	return len(cps), nil
}
