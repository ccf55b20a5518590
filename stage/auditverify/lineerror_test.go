package auditverify_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/stage/auditverify"
)

// A line the reader refuses (here too long) is reported once with its
// line number: the message read "line 1: line 1: line too long" before.
func TestLineErrorNamedOnce(t *testing.T) {
	in := strings.Repeat("a", 300) + "\n"
	var stdout, stderr bytes.Buffer
	err := auditverify.Run(context.Background(), []string{"--max-line", "100"}, strings.NewReader(in), &stdout, &stderr)
	if !strings.Contains(stderr.String(), "line 1: record larger than --max-line (300 bytes): not evidence of tampering; raise --max-line") {
		t.Errorf("stderr does not name line 1:\n%s", stderr.String())
	}
	// A size limit is not tampering (issue 12 item 1e): exit 4, not 3.
	if code := exitcode.Of(err); code != exitcode.Input {
		t.Errorf("exit %d, want %d (%v)", code, exitcode.Input, err)
	}
	if strings.Contains(stderr.String(), "line 1: line 1:") {
		t.Errorf("the line number is repeated:\n%s", stderr.String())
	}
}
