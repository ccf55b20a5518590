package auditbatch

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/batcher"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

// expected reads in the way audit-batch must: the record lines it has to
// pass on, in order, and the exit code it has to end with.
func expected(in []byte, maxLine int) ([][]byte, int) {
	r, err := ndjson.NewReader(bytes.NewReader(in), ndjson.Options{MaxLine: maxLine})
	if err != nil {
		return nil, exitcode.Failure
	}
	var p fastjson.Parser
	var out [][]byte
	for {
		line, err := r.Next()
		var le *ndjson.LineError
		switch {
		case err == io.EOF:
			return out, exitcode.OK
		case errors.As(err, &le):
			return out, exitcode.Input
		case err != nil:
			return out, exitcode.Failure
		}
		if _, err := batcher.RecordSeq(&p, line.Bytes); err != nil {
			return out, exitcode.Input
		}
		out = append(out, bytes.Clone(line.Bytes))
	}
}

// FuzzBatch: whatever the input, stdout is whole batches whose headers
// match the records that follow them (count, bytes, first and last seq,
// ids from 1), within the caps (a batch over -max-bytes holds one record),
// and the records are exactly the input's record lines, in order, up to the
// first bad line; the exit code says how the input ended.
func FuzzBatch(f *testing.F) {
	f.Add([]byte(recs(1, 5, 0)), uint8(2), uint16(700))
	f.Add([]byte(recs(1, 3, 0)+"not json\n"+recs(5, 6, 0)), uint8(10), uint16(10000))
	f.Add([]byte(recs(7, 9, 0)+`{"seq":10`), uint8(1), uint16(1))
	f.Add([]byte("\ufeff"+`{ "seq" : 1 }`+"\r\n\n"+`{"seq":0}`+"\n"+`{"seq":3,"a":"\u00e9"}`+"\n"), uint8(3), uint16(20))
	f.Add([]byte(`{"seq":5}`+"\n"+`{"seq":4}`+"\n"+`{"seq":4}`+"\n"), uint8(5), uint16(100))
	f.Add([]byte(`{"seq":99999999999999999999}`+"\n"+`{"seq":01}`+"\n"), uint8(5), uint16(100))
	f.Fuzz(func(t *testing.T, in []byte, maxCount uint8, maxBytes uint16) {
		mc, mb := int(maxCount)%16+1, int64(maxBytes)%4096+1
		const maxLine = 1 << 12
		wantLines, wantCode := expected(in, maxLine)
		var stdout, stderr bytes.Buffer
		args := []string{"-quiet", "-max-count", strconv.Itoa(mc), "-max-bytes", strconv.FormatInt(mb, 10), "-max-line", strconv.Itoa(maxLine)}
		err := RunWith(t.Context(), args, bytes.NewReader(in), &stdout, &stderr, Options{Clock: newFakeClock()})
		if code := exitcode.Of(err); code != wantCode {
			t.Fatalf("exit code %d (%v), want %d", code, err, wantCode)
		}
		if stderr.Len() != 0 {
			t.Fatalf("stderr %q", stderr.String())
		}
		out := stdout.Bytes()
		var got [][]byte
		var id int64
		for len(out) > 0 {
			hl, rest, ok := bytes.Cut(out, []byte("\n"))
			if !ok {
				t.Fatalf("output ends without a newline: %q", out)
			}
			out = rest
			h, isHeader, err := framing.ParseHeader(nil, hl)
			if !isHeader || err != nil {
				t.Fatalf("want a header, got %q (%v)", hl, err)
			}
			id++
			if h.ID != id || h.Count > mc || h.Bytes > mb && h.Count != 1 {
				t.Fatalf("header %+v breaks the caps %d/%d or the ids", h, mc, mb)
			}
			var n int64
			prev := int64(-1)
			for i := range h.Count {
				l, rest, ok := bytes.Cut(out, []byte("\n"))
				if !ok {
					t.Fatalf("batch %d: record %d of %d missing", h.ID, i+1, h.Count)
				}
				out = rest
				seq, err := batcher.RecordSeq(nil, l)
				if err != nil {
					t.Fatalf("batch %d: record %q: %v", h.ID, l, err)
				}
				if i == 0 && seq != h.FirstSeq || i == h.Count-1 && seq != h.LastSeq || seq < prev {
					t.Fatalf("batch %d: seq %d at %d; header %+v", h.ID, seq, i, h)
				}
				prev = seq
				n += int64(len(l))
				got = append(got, l)
			}
			if n != h.Bytes {
				t.Fatalf("batch %d: %d bytes, header says %d", h.ID, n, h.Bytes)
			}
		}
		if len(got) != len(wantLines) {
			t.Fatalf("%d records out, want %d", len(got), len(wantLines))
		}
		for i := range got {
			if !bytes.Equal(got[i], wantLines[i]) {
				t.Fatalf("record %d: %q, want %q", i, got[i], wantLines[i])
			}
		}
	})
}

// FuzzBatcher drives the Batcher the way the loop does (Tick at every
// Deadline, Add at arrival) through a random schedule, and checks the rule:
// the interval stays within [min, max], no record waits longer than the max
// interval, a batch closed by age is at least as old as its header's
// interval, and no record is lost or reordered.
func FuzzBatcher(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 1, 1, 1, 255, 255})
	f.Add([]byte{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130})
	f.Add([]byte(strings.Repeat("\x01", 64) + strings.Repeat("\xf0", 8)))
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) < 2 {
			return
		}
		lim := Limits{MaxCount: int(ops[0])%8 + 1, MaxBytes: int64(ops[1])%64 + 8, MinInterval: 10 * ms, MaxInterval: 200 * ms}
		var out bytes.Buffer
		b, err := batcher.NewBatcher(batcher.TextOut(ndjson.NewWriter(&out, 0)), lim)
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		arrived := map[int64]time.Time{}
		var want []string
		seq := int64(0)
		pos := 0
		// collect checks the batches written by a call at time at: none
		// waited longer than the max interval, and one closed by Tick (by
		// age) waited at least its header's interval.
		nb := 0
		collect := func(at time.Time, byTick bool) {
			for _, l := range strings.Split(out.String()[pos:], "\n") {
				h, ok, _ := framing.ParseHeader(nil, []byte(l))
				if !ok {
					continue
				}
				nb++
				age := at.Sub(arrived[h.FirstSeq])
				if age > lim.MaxInterval {
					t.Fatalf("batch %d closed %v after its first record arrived (max %v)", nb, age, lim.MaxInterval)
				}
				if byTick && age < time.Duration(h.IntervalMs)*ms {
					t.Fatalf("batch %d closed by age after %v, before its interval %dms", nb, age, h.IntervalMs)
				}
			}
			pos = out.Len()
		}
		before := b.Stats()
		for _, op := range ops[2:] {
			// Each op: high 3 bits a gap in ms (0..7 × 7ms), low 5 bits a
			// record length (0: no record, just time passing).
			next := now.Add(time.Duration(op>>5) * 7 * ms)
			for {
				d, ok := b.Deadline()
				if !ok || d.After(next) {
					break
				}
				if err := b.Tick(d); err != nil {
					t.Fatal(err)
				}
				collect(d, true)
				iv := b.Interval()
				if iv < lim.MinInterval || iv > lim.MaxInterval {
					t.Fatalf("interval %v out of range", iv)
				}
				if d2, ok := b.Deadline(); ok && !d2.After(d) {
					t.Fatalf("Tick at %v left a deadline at %v", d.Sub(t0), d2.Sub(t0))
				}
			}
			now = next
			if n := int(op & 31); n > 0 {
				seq++
				line := `{"seq":` + strconv.FormatInt(seq, 10) + `,"p":"` + strings.Repeat("x", n) + `"}`
				arrived[seq] = now
				want = append(want, line)
				if err := b.Add(now, []byte(line), seq); err != nil {
					t.Fatal(err)
				}
				collect(now, false)
			}
			iv := b.Interval()
			if iv < lim.MinInterval || iv > lim.MaxInterval {
				t.Fatalf("interval %v out of range", iv)
			}
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
		collect(now, false)
		after := b.Stats()
		if after.Records-before.Records != seq {
			t.Fatalf("%d records written, %d added", after.Records, seq)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			if l == "" {
				continue
			}
			if _, ok, _ := framing.ParseHeader(nil, []byte(l)); !ok {
				got = append(got, l)
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("records out differ from records in:\n%q\n%q", got, want)
		}
	})
}
