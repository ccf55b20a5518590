package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/stage/auditverify"
)

// The output is what audit-verify takes as many chains (or one chain's
// plain lines): every record verifies, each chain's runs after its mark.
func TestChainmixVerifies(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		records, mark int
		summary       string
	}{
		{[]string{"--chains", "3", "--records", "31", "--run", "4"}, 31, 9, "31 records in 3 chains (0 held)"},
		{[]string{"--chains", "100", "--records", "1000", "--run", "10"}, 1000, 100, "1000 records in 100 chains (0 held)"},
		{[]string{"--chains", "1", "--records", "50", "--marks=false"}, 50, 0, "50 records (seq 1..50"},
	} {
		var out bytes.Buffer
		if err := run(tc.args, &out); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if n := strings.Count(out.String(), `{"mark":{"type":"chain"`); n != tc.mark {
			t.Errorf("%v: %d chain marks, want %d", tc.args, n, tc.mark)
		}
		var stderr bytes.Buffer
		if err := auditverify.Run(context.Background(), nil, &out, io.Discard, &stderr); err != nil {
			t.Fatalf("%v: audit-verify: %v\n%s", tc.args, err, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.summary) {
			t.Errorf("%v: audit-verify said %q, want %q", tc.args, stderr.String(), tc.summary)
		}
	}
	if err := run([]string{"--chains", "2", "--marks=false"}, io.Discard); err == nil {
		t.Error("--marks=false with 2 chains: no error")
	}
}
