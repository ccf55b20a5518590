package ship

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestCheckpointLinesRideUnacked: checkpoint lines (seal
// --emit-checkpoints) in a framed batch become checkpoint Records (the
// note, its size as Seq) sent with the records; the batch's ack covers its
// records only, and a batch of checkpoint lines alone has no ack.
func TestCheckpointLinesRideUnacked(t *testing.T) {
	rec := func(seq int) string {
		return `{"seq":` + strconv.Itoa(seq) + `,"ts":1,"tenantId":"a","kind":"k","prevHash":"` + strings.Repeat("0", 64) + `","recordHash":"` + strings.Repeat(strconv.Itoa(seq%10), 64) + `","record":{}}`
	}
	cp := func(size int) string {
		return `{"checkpoint":"example.com/log\n` + strconv.Itoa(size) + `\nROOT=\n\n— example.com/log SIG=\n"}`
	}
	hdr := func(id, count int) string {
		return `{"batch":{"id":` + strconv.Itoa(id) + `,"count":` + strconv.Itoa(count) + `,"bytes":10,"firstSeq":1,"lastSeq":2,"intervalMs":5}}`
	}
	in := strings.Join([]string{hdr(1, 3), rec(1), rec(2), cp(2), hdr(2, 1), cp(2), hdr(3, 3), cp(2), rec(3), cp(3)}, "\n") + "\n"
	out := make(chan *Batch, 10)
	if err := ReadBatches(context.Background(), strings.NewReader(in), out, 1<<20); err != nil {
		t.Fatal(err)
	}
	close(out)
	var acks []string
	for b := range out {
		b.Status = make([]sink.Status, len(b.Records))
		for i, r := range b.Records {
			if strings.HasPrefix(string(r.Line), `{"checkpoint":`) != (r.Checkpoint != nil) {
				t.Fatalf("batch %d line %d: Checkpoint %q for %s", b.ID, i, r.Checkpoint, r.Line)
			}
			if r.Checkpoint != nil && !strings.HasPrefix(string(r.Checkpoint), "example.com/log\n"+strconv.FormatInt(r.Seq, 10)+"\n") {
				t.Fatalf("checkpoint record seq %d, note %q", r.Seq, r.Checkpoint)
			}
		}
		a, ok := ackOf("splunk:x", b)
		if !ok {
			acks = append(acks, "none")
			continue
		}
		acks = append(acks, strconv.FormatInt(a.FirstSeq, 10)+".."+strconv.FormatInt(a.LastSeq, 10)+" count "+strconv.Itoa(a.Count)+" "+a.LastHash[:1])
	}
	want := "[1..2 count 2 2 none 3..3 count 1 3]"
	if got := "[" + strings.Join(acks, " ") + "]"; got != want {
		t.Fatalf("acks %s, want %s", got, want)
	}
}

// TestCheckpointLineMalformed: a checkpoint line whose note has no size is
// an input error naming the line.
func TestCheckpointLineMalformed(t *testing.T) {
	in := `{"batch":{"id":1,"count":1,"bytes":10,"firstSeq":1,"lastSeq":1,"intervalMs":5}}` + "\n" + `{"checkpoint":"no size"}` + "\n"
	out := make(chan *Batch, 1)
	err := ReadBatches(context.Background(), strings.NewReader(in), out, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "line 2: checkpoint line: the note has no size line") {
		t.Fatalf("err %v", err)
	}
}
