package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// TestInputStopsBlockedRead: a read blocked on a quiet pipe returns the
// stop error at once, and every byte written before was read first.
func TestInputStopsBlockedRead(t *testing.T) {
	for _, stop := range []error{ErrStopped, ErrOutputClosed} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		in := NewInput(r)
		if in.kind != kindPoll {
			t.Fatalf("a pipe is kind %d", in.kind)
		}
		w.Write([]byte("line 1\nline 2\n"))
		got := make(chan []byte, 1)
		gotErr := make(chan error, 1)
		go func() {
			b, err := io.ReadAll(in)
			got <- b
			gotErr <- err
		}()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		in.Stop(stop)
		select {
		case b := <-got:
			if string(b) != "line 1\nline 2\n" {
				t.Fatalf("read %q before the stop", b)
			}
			if err := <-gotErr; err != stop {
				t.Fatalf("err %v, want %v", err, stop)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the read did not return after Stop")
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("stop took %v", d)
		}
		in.Close()
		if fl, _ := unix.FcntlInt(r.Fd(), unix.F_GETFL, 0); fl&unix.O_NONBLOCK != 0 {
			t.Fatal("Close left the pipe non-blocking")
		}
		r.Close()
		w.Close()
	}
	if exitcode.Of(ErrStopped) != exitcode.OK || exitcode.Of(exitcode.New(exitcode.Input, ErrOutputClosed)) != exitcode.Pipe {
		t.Fatal("exit codes of the stop errors")
	}
}

// TestOutputStopsBetweenLines: after a stop, a write that a full pipe
// blocks gives up within about two StopGrace, having finished the line it
// began: the reader sees whole lines only.
func TestOutputStopsBetweenLines(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st := &runState{}
	out := &Output{f: w, fd: int(w.Fd()), state: st, kind: kindPlain}
	// Not NewOutput: the test's stderr may share nothing, but be sure.
	if err := unix.SetNonblock(out.fd, true); err != nil {
		t.Fatal(err)
	}
	out.kind = kindPoll
	line := strings.Repeat("x", 999) + "\n"
	buf := []byte(strings.Repeat(line, 300)) // 300 KB: more than the pipe holds
	done := make(chan error, 1)
	go func() { _, err := out.Write(buf); done <- err }()
	time.Sleep(200 * time.Millisecond)
	st.set(causeSignal)
	select {
	case err := <-done:
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("err %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the write did not give up after the stop")
	}
	w.Close()
	b, _ := io.ReadAll(r)
	if len(b) == 0 || len(b)%len(line) != 0 || !bytes.HasSuffix(b, []byte("\n")) {
		t.Fatalf("the reader got %d bytes: not whole lines", len(b))
	}
}

// A run cut short by its cancellation exits by what cancelled it, whatever
// code the stage wrapped around the cancellation (audit-read's database
// open, cut short by a closed output, was exit 5).
func TestStopCause(t *testing.T) {
	wrapped := exitcode.New(exitcode.Database, fmt.Errorf("open db: %w", context.Canceled))
	other := exitcode.New(exitcode.Database, errors.New("no such table"))
	for _, tc := range []struct {
		name  string
		err   error
		cause int32
		want  int
	}{
		{"signal", wrapped, causeSignal, exitcode.OK},
		{"output closed", wrapped, causeOutputClosed, exitcode.Pipe},
		{"no stop: the stage's own code", wrapped, causeNone, exitcode.Database},
		{"a real failure during a stop", other, causeSignal, exitcode.Database},
	} {
		if got := exitcode.Of(stopCause(tc.err, tc.cause)); got != tc.want {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.want)
		}
	}
}
