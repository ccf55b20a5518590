package batcher

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

// TestChainMarksCutBatches: a chain mark naming another chain than the
// open batch's closes it; every header after a chain mark names its chain;
// input without chain marks gives headers without "chain"; marks are never
// written; a chain mark that does not parse stops the input with exit 4
// naming its line.
func TestChainMarksCutBatches(t *testing.T) {
	A, B := strings.Repeat("a", 64), "host-b"
	cm := func(id string) string { return string(chain.AppendChainMark(nil, id, nil)) }
	cmAnchored := func(id string, seq int64) string {
		return string(chain.AppendChainMark(nil, id, &chain.Anchor{Seq: seq, Hash: fmt.Sprintf("%064x", seq)}))
	}
	anchor := `{"mark":{"type":"anchor","source":"cursor","exporter":"x","seq":3,"hash":"` + fmt.Sprintf("%064x", 3) + `","chain":"` + B + `"}}`
	r := func(seq int64) string { return rec(seq, 0) }
	type batch struct {
		chain       string
		first, last int64
	}
	tests := []struct {
		name   string
		lines  []string
		want   []batch
		chains int64 // batches closed at a chain change
		err    string
	}{
		{"no marks: one chain, no chain in the headers",
			[]string{r(1), r(2), r(3)}, []batch{{"", 1, 3}}, 0, ""},
		{"interleaved chains: a batch per run, each named",
			[]string{cm(A), r(1), r(2), r(3), cm(B), r(1), r(2), cmAnchored(A, 3), r(4), r(5)},
			[]batch{{A, 1, 3}, {B, 1, 2}, {A, 4, 5}}, 2, ""},
		{"the same chain again does not cut",
			[]string{cm(A), r(1), cm(A), r(2), cm(A), r(3)}, []batch{{A, 1, 3}}, 0, ""},
		{"records before the first chain mark are unnamed",
			[]string{r(1), r(2), cm(A), r(1)}, []batch{{"", 1, 2}, {A, 1, 1}}, 1, ""},
		{"an anchor mark's chain does not name batches",
			[]string{anchor, r(4), r(5)}, []batch{{"", 4, 5}}, 0, ""},
		{"marks with no record between: the last one counts",
			[]string{cm(A), cm(B), r(7), cm(A)}, []batch{{B, 7, 7}}, 1, ""},
		{"a bad chain mark stops the input at its line",
			[]string{cm(A), r(1), `{"mark":{"type":"chain","chain":"no spaces allowed"}}`, r(2)},
			[]batch{{A, 1, 1}}, 0, "line 3: bad chain mark"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			lim := Limits{MaxCount: 100, MaxBytes: 1 << 20, MinInterval: time.Hour, MaxInterval: time.Hour}
			b, err := NewBatcher(TextOut(ndjson.NewWriter(&out, 0)), lim)
			if err != nil {
				t.Fatal(err)
			}
			in := strings.Join(tt.lines, "\n") + "\n"
			err = Run(context.Background(), strings.NewReader(in), b, Config{Limits: lim, MaxLine: 1 << 20})
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || exitcode.Of(err) != exitcode.Input) {
				t.Fatalf("err %v (exit %d), want %q (exit 4)", err, exitcode.Of(err), tt.err)
			}
			var got []batch
			for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
				if framing.IsMark(l) {
					t.Fatalf("a mark was written: %s", l)
				}
				h, ok, err := framing.ParseHeader(nil, l)
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					continue
				}
				if h.Chain == "" && bytes.Contains(l, []byte(`"chain"`)) {
					t.Fatalf("header %s names an empty chain", l)
				}
				got = append(got, batch{h.Chain, h.FirstSeq, h.LastSeq})
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("batches %v, want %v\n%s", got, tt.want, out.String())
			}
			if n := b.Stats().Closed[ClosedChain]; n != tt.chains {
				t.Fatalf("%d batches closed at a chain change, want %d", n, tt.chains)
			}
		})
	}
}
