package auditverify_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/stage/auditverify"
)

// A line the reader refuses (here too long) is reported once with its
// line number: the message read "line 1: line 1: line too long" before.
func TestLineErrorNamedOnce(t *testing.T) {
	in := strings.Repeat("a", 300) + "\n"
	var stdout, stderr bytes.Buffer
	auditverify.Run(context.Background(), []string{"--max-line", "100"}, strings.NewReader(in), &stdout, &stderr)
	if !strings.Contains(stderr.String(), "line 1: line too long") {
		t.Errorf("stderr does not name line 1:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "line 1: line 1:") {
		t.Errorf("the line number is repeated:\n%s", stderr.String())
	}
}
