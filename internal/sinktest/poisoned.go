package sinktest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// RerunPoisoned runs every other test of the package again, in a new
// process of the same test binary, with AUDITPIPE_POISON_RELEASED=1: each
// request body a sink released (httpsink.Body.Release) is overwritten with
// 0xAA before its memory can be reused, so a body released while a request
// may still read it reaches the receiver as wrong bytes, and the tests that
// check what was delivered fail. In that process it skips itself.
func RerunPoisoned(t *testing.T) {
	t.Helper()
	if os.Getenv("AUDITPIPE_POISON_RELEASED") == "1" {
		t.Skip("this is the poisoned run")
	}
	cmd := exec.Command(os.Args[0], "-test.skip", "^"+t.Name()+"$", "-test.count=1", "-test.timeout=3m",
		fmt.Sprintf("-test.short=%v", testing.Short()))
	cmd.Env = append(os.Environ(), "AUDITPIPE_POISON_RELEASED=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.HasSuffix(bytes.TrimSpace(out), []byte("PASS")) {
		t.Fatalf("the package's tests with AUDITPIPE_POISON_RELEASED=1: %v\n%s", err, out)
	}
}
