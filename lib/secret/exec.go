package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/auditpipe/auditpipe/lib/elide"
	"os/exec"
	"strings"
	"time"
)

// ErrTimeout: an exec: command did not finish within its timeout.
var ErrTimeout = errors.New("command did not finish in time and was killed")

// maxStderr is how much of a failing command's standard error is kept for
// the error message.
const maxStderr = 4 << 10

// shownStderr is how much of it the message shows.
const shownStderr = 300

// resolveExec runs cmdline (split by splitArgs, no shell) and returns its
// standard output.
func resolveExec(ctx context.Context, cmdline string, timeout time.Duration) (string, error) {
	argv, err := splitArgs(cmdline)
	if err != nil {
		return "", err
	}
	if len(argv) == 0 {
		return "", errors.New("no command after exec:")
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(rctx, argv[0], argv[1:]...)
	// A killed command's children may hold the pipes open: stop waiting
	// for them shortly after the kill.
	cmd.WaitDelay = time.Second
	stdout := &capped{max: MaxFileSize + 1}
	stderr := &capped{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Run()
	switch {
	case ctx.Err() != nil:
		return "", ctx.Err()
	case rctx.Err() != nil:
		return "", fmt.Errorf("%w (after %s)", ErrTimeout, timeout)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg := ee.ProcessState.String() // "exit status 2", "signal: killed"
			if text := scrub(stderr.Bytes(), stdout.Bytes()); text != "" {
				msg += ": " + text
			}
			return "", errors.New(msg)
		}
		return "", err // not started: not found, not executable
	case stdout.over:
		return "", fmt.Errorf("%w (output over %d bytes)", ErrTooLarge, MaxFileSize)
	}
	return stdout.String(), nil
}

// scrub returns the first part of a failing command's standard error on
// one line, with anything the command wrote to standard output (which may
// be a secret, or part of one) masked.
func scrub(stderr, stdout []byte) string {
	text := string(stderr)
	for _, part := range append([][]byte{bytes.TrimSpace(stdout)}, bytes.Split(stdout, []byte("\n"))...) {
		if p := strings.TrimSpace(string(part)); p != "" {
			text = strings.ReplaceAll(text, p, "[output]")
		}
	}
	text = strings.Join(strings.Fields(text), " ")
	return elide.To(text, shownStderr)
}

// capped keeps the first max bytes written to it and notes whether more
// came; it never fails a write, so the command is not killed by SIGPIPE.
// (Not an embedded bytes.Buffer: io.Copy would use its ReadFrom and
// bypass the cap.)
type capped struct {
	buf  []byte
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	if room := c.max - len(c.buf); n > room {
		c.over = true
		p = p[:max(room, 0)]
	}
	c.buf = append(c.buf, p...)
	return n, nil
}

func (c *capped) Bytes() []byte  { return c.buf }
func (c *capped) String() string { return string(c.buf) }

// splitArgs splits a command line into words without a shell: blanks
// separate words; '…' keeps its contents as they are; "…" keeps its
// contents except that \" and \\ are a quote and a backslash; outside
// quotes a backslash keeps the next character as it is.
func splitArgs(s string) ([]string, error) {
	var (
		args  []string
		cur   strings.Builder
		inArg bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		case c == '\n' || c == '\r':
			return nil, errors.New("the command line holds a line break")
		case c == '\'':
			inArg = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated ' in the command line")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inArg = true
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
					cur.WriteByte(s[i])
					continue
				}
				if s[i] == '"' {
					closed = true
					break
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				return nil, errors.New(`unterminated " in the command line`)
			}
		case c == '\\':
			inArg = true
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
		default:
			inArg = true
			cur.WriteByte(c)
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}

// SplitCommand splits a command line into words as exec: references are
// split (no shell: quotes and backslashes as in the package comment), for
// other commands auditpipe runs, such as an external signer.
func SplitCommand(s string) ([]string, error) { return splitArgs(s) }
