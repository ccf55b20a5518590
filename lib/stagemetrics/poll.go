package stagemetrics

import (
	"context"
	"time"
)

// Poll calls f once before it returns, then every interval from another
// goroutine, until ctx is done or stop is called; stop waits for a call in
// progress. Stages use it to read the head of the log for
// declaragent_audit_last_seq and the progress line: the first value is
// there before the stage starts working, however short its run.
func Poll(ctx context.Context, every time.Duration, f func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	f(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			f(ctx)
		}
	}()
	return func() { cancel(); <-done }
}
