package ship

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/ndjson"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// ReadBatches reads audit-batch's framing (a header line, then exactly
// count record lines) from r and sends each complete batch to out. It
// returns nil at EOF or when ctx is done (the batch being read is dropped:
// it was not acked, so it will be read again from the cursor). A header
// whose records do not all arrive, a record line outside a batch, or a
// record line that does not parse, is an input error (exit code 4); every
// complete batch before it has been sent on.
func ReadBatches(ctx context.Context, r io.Reader, out chan<- *Batch, maxLine int) error {
	return ReadBatchesMarks(ctx, r, out, maxLine, nil)
}

// ReadBatchesMarks is ReadBatches that drops the mark lines (framing.IsMark:
// audit-read's control lines for audit-verify) wherever they are, counting
// them in marks if it is not nil: a mark is not a record, it is never
// shipped, and it is no part of a batch's count.
func ReadBatchesMarks(ctx context.Context, r io.Reader, out chan<- *Batch, maxLine int, marks *atomic.Int64) error {
	if maxLine <= 0 {
		maxLine = ndjson.DefaultMaxLine
	}
	nr, err := ndjson.NewReader(r, ndjson.Options{MaxLine: maxLine})
	if err != nil {
		return exitcode.New(exitcode.Input, fmt.Errorf("stdin: %w", err))
	}
	var (
		fj      fastjson.Parser
		lp      chain.LineParser
		cur     *Batch
		want    int
		hdrLine int64
		ends    []int
		nums    []int64
	)
	for {
		if ctx.Err() != nil {
			return nil
		}
		line, err := nr.Next()
		if err == io.EOF {
			if cur != nil {
				return exitcode.Errorf(exitcode.Input, "line %d: batch %d ended after %d of %d records (the stage before stopped mid-batch); not sent, it will be read again from the cursor",
					hdrLine, cur.ID, len(ends), want)
			}
			return nil
		}
		if err != nil {
			var le *ndjson.LineError
			if errors.As(err, &le) {
				return exitcode.New(exitcode.Input, fmt.Errorf("stdin: %w", err))
			}
			return fmt.Errorf("read stdin: %w", err)
		}
		if framing.IsMark(line.Bytes) {
			if marks != nil {
				marks.Add(1)
			}
			continue
		}
		// A line in audit-read's layout starts with its seq and holds no
		// other top-level key: it cannot be a header, so spare it the search.
		isHeader := false
		var h framing.Header
		if !bytes.HasPrefix(line.Bytes, recordPrefix) && !framing.IsCheckpoint(line.Bytes) {
			h, isHeader, err = framing.ParseHeader(&fj, line.Bytes)
			if err != nil {
				return exitcode.Errorf(exitcode.Input, "line %d: %v", line.Num, err)
			}
		}
		if isHeader {
			if cur != nil {
				return exitcode.Errorf(exitcode.Input, "line %d: new batch header while batch %d (line %d) has %d of %d records", line.Num, cur.ID, hdrLine, len(ends), want)
			}
			if h.Bytes/int64(maxLine) > int64(h.Count) {
				return exitcode.Errorf(exitcode.Input, "line %d: batch header claims %d bytes for %d records, more than records of --max-line %d can hold",
					line.Num, h.Bytes, h.Count, maxLine)
			}
			// The arena grows past this if it must: a header's word is not
			// memory to hand out. It comes from the pool (pool.go).
			cur = newBatch(h.ID, h.Chain, h.Bytes)
			want, hdrLine, ends, nums = h.Count, line.Num, ends[:0], nums[:0]
			continue
		}
		if cur == nil {
			return exitcode.Errorf(exitcode.Input, "line %d: record line outside a batch (framed input must be a header line followed by its records)", line.Num)
		}
		nums = append(nums, line.Num)
		cur.arena = append(cur.arena, line.Bytes...)
		ends = append(ends, len(cur.arena))
		if len(ends) < want {
			continue
		}
		if i, err := cur.index(&lp, ends, 0); err != nil {
			return exitcode.Errorf(exitcode.Input, "line %d: %v", nums[i], err)
		}
		cur.SetChain(cur.Chain)
		select {
		case out <- cur:
		case <-ctx.Done():
			return nil
		}
		cur = nil
	}
}

var recordPrefix = []byte(`{"seq":`)

// Builder makes Batches from in-memory batches (lib/batcher's Out): the
// in-process batcher of plain-record input hands them over this way, with
// no framing text in between. The zero value is ready; one goroutine.
type Builder struct {
	lp   chain.LineParser
	ends []int
}

// Build returns batch id made of lines, record lines each followed by
// '\n', which it copies: the Batch owns its memory and lines may be
// reused. A line that is not a record envelope is returned with the error.
func (bd *Builder) Build(id int64, lines []byte) (*Batch, []byte, error) {
	b := newBatch(id, "", int64(len(lines)))
	b.arena = append(b.arena, lines...)
	bd.ends = bd.ends[:0]
	for off := 0; off < len(b.arena); {
		i := bytes.IndexByte(b.arena[off:], '\n')
		if i < 0 {
			i = len(b.arena) - off
		}
		bd.ends = append(bd.ends, off+i)
		off += i + 1
	}
	if i, err := b.index(&bd.lp, bd.ends, 1); err != nil {
		start := 0
		if i > 0 {
			start = bd.ends[i-1] + 1
		}
		// The bad line is returned to the caller: the batch's memory is
		// not pooled again.
		return nil, b.arena[start:bd.ends[i]], err
	}
	return b, nil, nil
}

// index builds Records over the arena, once it no longer moves: line i
// ends at ends[i] and the next starts sep bytes later. Strings alias the
// arena: the Batch owns it for its whole life.
func (b *Batch) index(lp *chain.LineParser, ends []int, sep int) (int, error) {
	b.Records = resize(b.Records, len(ends)) // each is set below
	start := 0
	for i, end := range ends {
		line := b.arena[start:end:end]
		if framing.IsCheckpoint(line) {
			// A checkpoint line (seal --emit-checkpoints): the sink sends
			// it as a checkpoint event; acks skip it (ackOf).
			note, size, err := framing.ParseCheckpoint(nil, line)
			if err != nil {
				return i, err
			}
			b.Records[i] = sink.Record{Seq: size, Line: line, Checkpoint: note}
			start = end + sep
			continue
		}
		rec, err := lp.ParseEnvelope(line)
		if err != nil {
			return i, err
		}
		b.Records[i] = sink.Record{
			Seq: rec.Seq, TS: rec.TS,
			TenantID: label(line, rec.TenantID), Kind: label(line, rec.Kind),
			Hash: str(rec.RecordHash), PrevHash: str(rec.PrevHash),
			Line: line, Raw: rec.Raw,
		}
		start = end + sep
	}
	return 0, nil
}

// label views b as a string if it lies inside line (the arena); an
// unescaped label lives in the parser's scratch and is copied.
func label(line, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	lo := uintptr(unsafe.Pointer(&line[0]))
	p := uintptr(unsafe.Pointer(&b[0]))
	if p >= lo && p < lo+uintptr(len(line)) {
		return str(b)
	}
	return string(b)
}

// str views b as a string without copying. b must be arena memory (or the
// parser's scratch for an escaped label, which is then copied).
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
