package auditdb

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A daemon-like writer (its own connection pool, one row per transaction)
// appends continuously while Follow tails: the follower sees every seq
// exactly once and in order, and the writer is never held up by it.
func TestFollowWhileDaemonWrites(t *testing.T) {
	path := tempDB(t)
	insertRows(t, path, chainRows(500, 1, []string{"a"}, []string{"k"}, 200)) // a backlog
	daemon := rawDB(t, path, "_txlock=immediate&_pragma=synchronous(NORMAL)")
	daemon.SetMaxOpenConns(1)
	db := openReader(t, path, ReaderOptions{ChunkRows: 64})

	const writes = 400
	committed := make([]time.Time, 500+writes+1) // by seq
	var mu sync.Mutex
	var maxWrite time.Duration
	writerDone := make(chan error, 1)
	caughtUp := make(chan struct{})
	go func() {
		<-caughtUp // measure latency from the head, not through the backlog
		ctx := context.Background()
		prev := ""
		if err := daemon.QueryRowContext(ctx, `SELECT record_hash FROM audit_records ORDER BY seq DESC LIMIT 1`).Scan(&prev); err != nil {
			writerDone <- err
			return
		}
		for i := range writes {
			rec := fmt.Sprintf(`{"i":%d,"kind":"k","pad":"%0200d","ts":%d}`, i, i, i)
			h := hexHash(prev, rec)
			start := time.Now()
			res, err := daemon.ExecContext(ctx, `INSERT INTO audit_records(ts, tenant_id, kind, record_json, prev_hash, record_hash) VALUES(?,?,?,?,?,?)`,
				i, "a", "k", rec, prev, h)
			if err != nil {
				writerDone <- err
				return
			}
			done := time.Now()
			seq, _ := res.LastInsertId()
			mu.Lock()
			committed[seq] = done
			maxWrite = max(maxWrite, done.Sub(start))
			mu.Unlock()
			prev = h
			time.Sleep(time.Duration(i%5) * time.Millisecond)
		}
		writerDone <- nil
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []int64
	var lat []time.Duration
	followDone := make(chan error, 1)
	go func() {
		prev := ""
		followDone <- db.Follow(ctx, Filter{}, 0, func(r *Row) error {
			now := time.Now()
			if r.PrevHash != prev {
				return fmt.Errorf("seq %d: prev_hash does not link", r.Seq)
			}
			prev = r.RecordHash
			got = append(got, r.Seq)
			if r.Seq == 500 {
				close(caughtUp)
			}
			mu.Lock()
			if c := committed[r.Seq]; !c.IsZero() {
				lat = append(lat, now.Sub(c))
			}
			mu.Unlock()
			if len(got) == 500+writes {
				cancel()
			}
			return nil
		})
	}()
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	select {
	case err := <-followDone:
		if err != nil {
			t.Fatalf("Follow: %v", err)
		}
	case <-time.After(10 * time.Second):
		cancel()
		<-followDone
		t.Fatalf("follower saw %d of %d rows", len(got), 500+writes)
	}
	want := make([]int64, 500+writes)
	for i := range want {
		want[i] = int64(i + 1)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("follower saw %d rows, not 1..%d exactly once in order", len(got), len(want))
	}
	if maxWrite > time.Second {
		t.Errorf("a write took %v: the reader is holding the daemon up", maxWrite)
	}
	slices.Sort(lat)
	p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	t.Logf("writer: %d commits, slowest %v; commit-to-follower latency p50 %v p99 %v max %v (poll %v)",
		writes, maxWrite, p50, p99, worst, DefaultPoll)
	if worst > 2*time.Second {
		t.Errorf("a committed row took %v to reach the follower", worst)
	}
}

// While fn blocks (a downstream that stopped reading), the reader holds no
// read transaction: the daemon's checkpoint can reset the WAL, and its
// writes go on.
func TestBlockedConsumerHoldsNoSnapshot(t *testing.T) {
	for _, follow := range []bool{false, true} {
		t.Run(fmt.Sprintf("follow=%v", follow), func(t *testing.T) {
			path := tempDB(t)
			insertRows(t, path, chainRows(100, 1, []string{"a"}, []string{"k"}, 100))
			daemon := rawDB(t, path, "_txlock=immediate")
			daemon.SetMaxOpenConns(1)
			mustExec(t, daemon, `PRAGMA busy_timeout=200`)
			db := openReader(t, path, ReaderOptions{ChunkRows: 50})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			inFn, release := make(chan struct{}), make(chan struct{})
			var seen []int64
			var count atomic.Int64
			done := make(chan error, 1)
			go func() {
				fn := func(r *Row) error {
					seen = append(seen, r.Seq)
					count.Add(1)
					if r.Seq == 10 {
						close(inFn)
						<-release
					}
					return nil
				}
				if follow {
					done <- db.Follow(ctx, Filter{}, 5*time.Millisecond, fn)
				} else {
					_, err := db.Scan(ctx, Filter{}, fn)
					done <- err
				}
			}()
			<-inFn
			// The consumer is stuck in the middle of a chunk.
			for i := range 20 {
				mustExec(t, daemon, fmt.Sprintf(`INSERT INTO audit_records(ts, tenant_id, kind, record_json, prev_hash, record_hash) VALUES(%d, 'a', 'k', '{}', '', '')`, i))
			}
			var busy, logFrames, ckpt int
			if err := daemon.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &ckpt); err != nil {
				t.Fatal(err)
			}
			if busy != 0 {
				t.Errorf("wal_checkpoint(TRUNCATE) busy=%d: a blocked consumer pins a read snapshot", busy)
			}
			close(release)
			if follow {
				deadline := time.Now().Add(5 * time.Second)
				for count.Load() < 120 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				cancel()
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			wantN := 100
			if follow {
				wantN = 120
			}
			if len(seen) != wantN {
				t.Errorf("consumer saw %d rows, want %d", len(seen), wantN)
			}
		})
	}
}

// Cancelling the context stops Follow cleanly after the row in hand, and
// ToSeq stops it once that seq has been passed.
func TestFollowStops(t *testing.T) {
	path := tempDB(t)
	insertRows(t, path, chainRows(50, 1, []string{"a", "b"}, []string{"k"}, 10))
	db := openReader(t, path, ReaderOptions{ChunkRows: 8})

	ctx, cancel := context.WithCancel(context.Background())
	var got []int64
	err := db.Follow(ctx, Filter{}, time.Millisecond, func(r *Row) error {
		got = append(got, r.Seq)
		if r.Seq == 13 {
			cancel()
		}
		return nil
	})
	if err != nil || len(got) != 13 || got[12] != 13 {
		t.Errorf("cancel at 13: got %v, %v", got, err)
	}

	// ToSeq on a filtered follow: stops when seq 40 has been examined, even
	// though the last row delivered is earlier.
	got = nil
	err = db.Follow(context.Background(), Filter{FromSeq: 31, ToSeq: 40, Tenants: []string{"a"}}, time.Millisecond, func(r *Row) error {
		got = append(got, r.Seq)
		return nil
	})
	if err != nil || !slices.Equal(got, []int64{31, 33, 35, 37, 39}) {
		t.Errorf("ToSeq 40: got %v, %v", got, err)
	}

	// An error from fn ends Follow with that error.
	err = db.Follow(context.Background(), Filter{}, time.Millisecond, func(r *Row) error {
		if r.Seq == 3 {
			return fmt.Errorf("downstream gone")
		}
		return nil
	})
	if err == nil || err.Error() != "downstream gone" {
		t.Errorf("fn error: %v", err)
	}

	// Cancelled while idle at the head.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	n := 0
	if err := db.Follow(ctx, Filter{FromSeq: 49}, 5*time.Millisecond, func(*Row) error { n++; return nil }); err != nil || n != 2 {
		t.Errorf("idle at head: %d rows, %v", n, err)
	}
}

// A follower that started on an empty log, with only Declaragent's daemon
// writing, and a filter that matches nothing for a long stretch.
func TestFollowFilteredFromEmpty(t *testing.T) {
	path := tempDB(t)
	cli(t, path, declaragentSchema)
	db := openReader(t, path, ReaderOptions{ChunkRows: 10})
	w := openWriter(t, path, WriterOptions{Create: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan int64, 100)
	done := make(chan error, 1)
	go func() {
		done <- db.Follow(ctx, Filter{Kinds: []string{"rare"}}, 2*time.Millisecond, func(r *Row) error {
			got <- r.Seq
			return nil
		})
	}()
	var want []int64
	for i := 1; i <= 120; i++ {
		kind := "common"
		if i%37 == 0 {
			kind = "rare"
			want = append(want, int64(i))
		}
		if _, _, err := w.Append(ctx, [][]byte{fmt.Appendf(nil, `{"kind":%q}`, kind)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var seen []int64
	timeout := time.After(5 * time.Second)
	for len(seen) < len(want) {
		select {
		case s := <-got:
			seen = append(seen, s)
		case <-timeout:
			t.Fatalf("saw %v, want %v", seen, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, want) {
		t.Errorf("saw %v, want %v", seen, want)
	}
}

// FollowIdle calls idle once each time it has caught up, after the last
// row committed so far and before it waits.
func TestFollowIdle(t *testing.T) {
	path := tempDB(t)
	w := openWriter(t, path, WriterOptions{Create: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	appendN := func(n int) { // in one transaction
		evs := make([][]byte, n)
		for i := range evs {
			evs[i] = []byte(`{"kind":"k"}`)
		}
		if _, _, err := w.Append(ctx, evs, nil); err != nil {
			t.Fatal(err)
		}
	}
	appendN(5)
	db := openReader(t, path, ReaderOptions{ChunkRows: 2})
	var delivered int64
	idles := make(chan int64)
	done := make(chan error, 1)
	go func() {
		done <- db.FollowIdle(ctx, Filter{}, 2*time.Millisecond,
			func(r *Row) error { delivered = r.Seq; return nil },
			func() error { idles <- delivered; return nil })
	}()
	if got := <-idles; got != 5 {
		t.Fatalf("first idle after seq %d, want 5", got)
	}
	appendN(3)
	if got := <-idles; got != 8 {
		t.Fatalf("second idle after seq %d, want 8", got)
	}
	// Nothing new: no further idle call while it waits.
	select {
	case got := <-idles:
		t.Fatalf("idle called again (after seq %d) with nothing new", got)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// An error from idle ends it.
	err := db.FollowIdle(context.Background(), Filter{}, time.Millisecond, func(*Row) error { return nil },
		func() error { return fmt.Errorf("flush: broken pipe") })
	if err == nil || err.Error() != "flush: broken pipe" {
		t.Errorf("idle error: %v", err)
	}
}
