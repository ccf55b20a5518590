package stagemetrics

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	var n atomic.Int64
	stop := Poll(t.Context(), 10*time.Millisecond, func(context.Context) { n.Add(1) })
	if n.Load() != 1 {
		t.Fatalf("Poll returned after %d calls, want 1 (the first is synchronous)", n.Load())
	}
	time.Sleep(55 * time.Millisecond)
	stop()
	got := n.Load()
	if got < 3 {
		t.Errorf("%d calls in 55ms at 10ms, want several", got)
	}
	time.Sleep(30 * time.Millisecond)
	if n.Load() != got {
		t.Error("called after stop")
	}
}
