package batcher

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/framing"
)

type collect struct {
	hs    []framing.Header
	lines []string
}

func (c *collect) Batch(h framing.Header, lines []byte) error {
	c.hs = append(c.hs, h)
	c.lines = append(c.lines, string(lines))
	return nil
}

// TestCheckpointLinesCarried: checkpoint lines ride in the batch they fall
// in, byte for byte, counted in its count, at the seq of the record before
// them (so they never close a batch by seq), even as the first line.
func TestCheckpointLinesCarried(t *testing.T) {
	rec := func(seq string) string { return `{"seq":` + seq + `,"ts":1,"record":{}}` }
	cp := `{"checkpoint":"o\n2\nR=\n\n— o S=\n"}`
	in := strings.Join([]string{cp, rec("1"), rec("2"), cp, rec("3")}, "\n") + "\n"
	var c collect
	b, err := NewBatcher(&c, Limits{MaxCount: 100, MaxBytes: 1 << 20, MinInterval: time.Second, MaxInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), strings.NewReader(in), b, Config{MaxLine: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if len(c.hs) != 1 || c.hs[0].Count != 5 || c.hs[0].FirstSeq != 0 || c.hs[0].LastSeq != 3 || c.lines[0] != in {
		t.Fatalf("batches %+v %q", c.hs, c.lines)
	}
}
