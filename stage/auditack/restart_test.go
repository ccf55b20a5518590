package auditack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/ship"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// deliverAll is a SIEM that stores everything it is sent.
type deliverAll struct{}

func (deliverAll) Send(ctx context.Context, recs []sink.Record) (sink.Result, error) {
	return sink.NewResult(len(recs)).All(sink.Delivered), nil
}
func (deliverAll) Check(ctx context.Context) error { return nil }
func (deliverAll) Close() error                    { return nil }

// fifoUnread is how many bytes wait in the FIFO at path (0 when none):
// FIONREAD, called TIOCINQ on Linux.
func fifoUnread(t *testing.T, path string) int {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCINQ)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Found by the chaos suite (audit-ack alone killed -9 while audit-ship
// runs on): the acks the dead acker had read from the FIFO but not
// committed (seqs 11..60, delivered for real) are lost with it, and the
// restarted acker reads 61.. from the same shipper. It refused them as a
// forged gapped ack (exit 3, "seqs 11..60 were never acked"): a false
// tamper alarm and a stuck pipeline after an ordinary restart of one
// stage. The shipper's acks say what its run delivered ("since",
// "sinceCount"), which the database confirms: the restarted acker takes
// them, the cursor reaches the end, and it exits 0 on SIGTERM.
func TestAckerKilledShipperRunsOn(t *testing.T) {
	db := sampleDB(t, 100)
	const ex = "splunk:chaos"
	fifo := filepath.Join(t.TempDir(), "acks.fifo")

	// The first acker commits its first ack at once, then (a long
	// interval) holds the rest uncommitted, as any acker does between
	// commits.
	first := startAck(t, nil, "--db", db, "--exporter", ex, "--fifo", fifo, "--commit-interval", "1h")
	waitFor(t, "the FIFO", 5*time.Second, func() bool { _, err := os.Stat(fifo); return err == nil })

	acks, err := ack.NewFIFOWriter(fifo, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	sh := ship.New(deliverAll{}, ship.Options{Exporter: ex, Inflight: 1, Acks: acks})
	in := make(chan *ship.Batch)
	done := make(chan error, 1)
	go func() { done <- sh.Run(context.Background(), in) }()
	batchOf := func(lo, hi int64) *ship.Batch {
		b := &ship.Batch{ID: lo}
		for s := lo; s <= hi; s++ {
			line := []byte(fmt.Sprintf(`{"seq":%d}`, s))
			b.Records = append(b.Records, sink.Record{Seq: s, Hash: HashAt(t, db, s), Line: line, Raw: line})
		}
		return b
	}
	in <- batchOf(1, 10)
	waitFor(t, "seq 10 committed", 5*time.Second, func() bool { return cursorOf(t, db, ex) == 10 })
	for lo := int64(11); lo <= 60; lo += 10 {
		in <- batchOf(lo, lo+9)
	}
	// The acks of 11..60 are written and read by the first acker.
	waitFor(t, "acks 11..60 read", 5*time.Second, func() bool { return acks.Pending() == 0 && fifoUnread(t, fifo) == 0 })
	time.Sleep(100 * time.Millisecond) // the last write may still be on its way into the FIFO
	waitFor(t, "acks 11..60 read", 5*time.Second, func() bool { return acks.Pending() == 0 && fifoUnread(t, fifo) == 0 })
	if got := cursorOf(t, db, ex); got != 10 {
		t.Fatalf("cursor %d before the kill, want 10 (the acks of 11..60 read, not committed)", got)
	}
	first.stop(t, syscall.SIGKILL, 5*time.Second)

	// The shipper runs on; a new acker is started.
	for lo := int64(61); lo <= 100; lo += 10 {
		in <- batchOf(lo, lo+9)
	}
	second := startAck(t, nil, "--db", db, "--exporter", ex, "--fifo", fifo, "--commit-interval", "10ms")
	deadline := time.Now().Add(10 * time.Second)
	for cursorOf(t, db, ex) != 100 {
		select {
		case <-second.done:
			t.Fatalf("the restarted audit-ack exited %d with the cursor at %d:\n%s", second.code, cursorOf(t, db, ex), second.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor %d, want 100:\n%s", cursorOf(t, db, ex), second.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := acks.Close(ctx); err != nil {
		t.Fatal(err)
	}
	second.stop(t, syscall.SIGTERM, 5*time.Second)
	if second.code != 0 || strings.Contains(second.stderr.String(), "never") {
		t.Errorf("exit %d; stderr:\n%s", second.code, second.stderr)
	}
}
