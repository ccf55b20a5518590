package sinktest

import (
	"context"
	"testing"

	"github.com/auditpipe/auditpipe/lib/chain"
)

// The records verify as a chain, and a rotated secret is read anew.
func TestRecordsAndSecrets(t *testing.T) {
	recs := Records(12, 500, 1764244800123, "")
	v := chain.NewVerifier(chain.Options{})
	for i, r := range recs {
		if len(r.Line) < 400 || len(r.Line) > 600 {
			t.Errorf("line %d is %d bytes, want about 500", i, len(r.Line))
		}
		pass, fs := v.Check(int64(i+1), r.Line)
		if !pass {
			t.Fatalf("record %d does not verify: %v", i, fs)
		}
		for _, f := range fs {
			// The first record has no anchor: a notice, not a break.
			if f.Severity == chain.SeverityError || f.Reason != chain.ReasonUnanchored {
				t.Fatalf("record %d: %v", i, f)
			}
		}
	}
	src, path := SecretFile(t, "key", "one")
	Rotate(t, path, "two")
	if _, err := src.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := src.Get(context.Background())
	if err != nil || got != "two" {
		t.Fatalf("after rotation: %q, %v", got, err)
	}
}
