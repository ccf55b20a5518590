package metrics_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/auditpipe/auditpipe/lib/metrics"
)

// slowReader reads everything from r after waiting delay, as a stage that
// is busy with something else before it reads its stdin.
func slowReader(r io.Reader, delay time.Duration) <-chan int64 {
	done := make(chan int64, 1)
	go func() {
		time.Sleep(delay)
		n, _ := io.Copy(io.Discard, r)
		done <- n
	}()
	return done
}

func TestBlockingWriterCountsAPause(t *testing.T) {
	s := metrics.New("audit-batch", metrics.Labels{})
	pr, pw := io.Pipe()
	done := slowReader(pr, 300*time.Millisecond)
	w := metrics.NewBlockingWriter(pw, 100*time.Millisecond, s.BackpressurePaused(), s.BackpressureSeconds())
	if n, err := w.Write([]byte("{\"seq\":1}\n")); n != 10 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	pw.Close()
	<-done
	if v := testutil.ToFloat64(s.BackpressurePaused()); v != 1 {
		t.Errorf("paused = %v, want 1", v)
	}
	// Only a write longer than the threshold is counted, so the seconds
	// are above it whatever the machine's speed.
	if v := testutil.ToFloat64(s.BackpressureSeconds()); v <= 0.1 {
		t.Errorf("paused seconds = %v, want > 0.1", v)
	}
}

// A full kernel pipe, as between two stages: one 1 MiB Write is one pause.
func TestBlockingWriterOSPipe(t *testing.T) {
	s := metrics.New("audit-read", metrics.Labels{})
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	done := slowReader(pr, 300*time.Millisecond)
	w := metrics.NewBlockingWriter(pw, 100*time.Millisecond, s.BackpressurePaused(), nil)
	if _, err := w.Write(make([]byte, 4<<20)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if n := <-done; n != 4<<20 {
		t.Fatalf("reader got %d bytes", n)
	}
	if v := testutil.ToFloat64(s.BackpressurePaused()); v != 1 {
		t.Errorf("paused = %v, want 1", v)
	}
}

func TestBlockingWriterNoPause(t *testing.T) {
	s := metrics.New("audit-batch", metrics.Labels{})
	var buf bytes.Buffer
	w := metrics.NewBlockingWriter(&buf, 0, s.BackpressurePaused(), s.BackpressureSeconds()) // default 100ms
	for range 100 {
		if _, err := w.Write([]byte("{\"seq\":1}\n")); err != nil {
			t.Fatal(err)
		}
	}
	if buf.Len() != 1000 {
		t.Fatalf("wrote %d bytes, want 1000", buf.Len())
	}
	if v := testutil.ToFloat64(s.BackpressurePaused()); v != 0 {
		t.Errorf("paused = %v, want 0", v)
	}
	if v := testutil.ToFloat64(s.BackpressureSeconds()); v != 0 {
		t.Errorf("paused seconds = %v, want 0", v)
	}
}

type failWriter struct{ n int }

func (f failWriter) Write(p []byte) (int, error) { return f.n, io.ErrClosedPipe }

func TestBlockingWriterPassesErrors(t *testing.T) {
	w := metrics.NewBlockingWriter(failWriter{3}, 0, nil, nil) // nil counters are allowed
	n, err := w.Write([]byte("abcdef"))
	if n != 3 || !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("Write = %d, %v; want 3, %v", n, err, io.ErrClosedPipe)
	}
}
