package auditdb

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// WatchHead and WatchHeadAt give the head before they return, follow it,
// and WatchHeadAt follows a file put in place of the one it opened.
func TestWatchHead(t *testing.T) {
	rows := chainRows(8, 1, []string{"a"}, []string{"k"}, 10)
	path := tempDB(t)
	insertRows(t, path, rows[:5])
	ctx := context.Background()

	var head atomic.Int64
	db := openReader(t, path, ReaderOptions{})
	stop := db.WatchHead(ctx, head.Store)
	if got := head.Load(); got != 5 {
		t.Errorf("WatchHead: head %d before it returned, want 5", got)
	}
	stop()

	var at atomic.Int64
	stop, err := WatchHeadAt(ctx, path, at.Store)
	if err != nil {
		t.Fatal(err)
	}
	if got := at.Load(); got != 5 {
		t.Errorf("WatchHeadAt: head %d before it returned, want 5", got)
	}
	renameOver(t, path, rows) // a restore: another file with 8 rows
	deadline := time.Now().Add(5 * time.Second)
	for at.Load() != 8 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := at.Load(); got != 8 {
		t.Errorf("WatchHeadAt: head %d after the file was replaced, want 8", got)
	}
	stop()
	at.Store(-1)
	time.Sleep(HeadEvery + 200*time.Millisecond)
	if got := at.Load(); got != -1 {
		t.Errorf("WatchHeadAt: set called after stop (%d)", got)
	}

	if _, err := WatchHeadAt(ctx, path+".missing", at.Store); err == nil {
		t.Error("WatchHeadAt of a missing database: no error")
	}
}
