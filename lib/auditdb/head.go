package auditdb

import (
	"context"
	"sync"
	"time"
)

// HeadEvery is how often WatchHead reads the head of the log: MAX(seq), an
// index lookup, for declaragent_audit_last_seq and the progress line's
// time left.
const HeadEvery = time.Second

// WatchHead calls set with the head of the log (HeadSeq) once before it
// returns, so the first value is there however short the run, then every
// HeadEvery from another goroutine, until ctx is done or stop is called;
// stop waits for a call in progress. A failed read skips set: the last
// value stands (the stage reports database errors its own way).
func (db *DB) WatchHead(ctx context.Context, set func(head int64)) (stop func()) {
	return every(ctx, HeadEvery, func(ctx context.Context) {
		if h, err := db.HeadSeq(ctx); err == nil {
			set(h)
		}
	})
}

// WatchHeadAt is WatchHead on a read-only connection of its own to the
// database at path, so that it never waits behind the caller's own work
// (a cursor commit); when another file is put at path (a restore: the
// identity Follow watches, statID), it reads that one. stop also closes the connection. The error is
// OpenReader's.
func WatchHeadAt(ctx context.Context, path string, set func(head int64)) (stop func(), err error) {
	db, err := OpenReader(ctx, path, ReaderOptions{})
	if err != nil {
		return nil, err
	}
	id, _ := statID(path)
	var mu sync.Mutex // db is swapped when the file at the path is replaced
	stopPoll := every(ctx, HeadEvery, func(ctx context.Context) {
		mu.Lock()
		defer mu.Unlock()
		if now, ok := statID(path); ok && now != id {
			if ndb, err := OpenReader(ctx, path, ReaderOptions{}); err == nil {
				db.Close()
				db, id = ndb, now
			}
		}
		if h, err := db.HeadSeq(ctx); err == nil {
			set(h)
		}
	})
	return func() { stopPoll(); mu.Lock(); db.Close(); mu.Unlock() }, nil
}

// every calls f once before it returns, then every interval from another
// goroutine, until ctx is done or stop is called; stop waits for a call in
// progress.
func every(ctx context.Context, interval time.Duration, f func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	f(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
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
