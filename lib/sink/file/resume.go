package file

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/ndjson"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// MaxResume bounds how many of the archive's newest records the sink
// remembers (seq and recordHash, 40 bytes each: 20 MiB; twice that at most
// while a gzip file is read) to skip
// what a restart sends again. A redelivery reaching further back than that
// is written again (at-least-once, as before), never skipped unchecked.
const MaxResume = 1 << 19

// held is a record the archive holds.
type held struct {
	seq  int64
	hash [32]byte
}

// archive is what the sink knows of the records its archive held when it
// started: every record with seq >= from (at most MaxResume of them,
// sorted by seq), and the highest seq.
type archive struct {
	from     int64
	last     int64
	lastHash [32]byte // the recordHash at last
	linked   bool     // the record after last was seen to link to it
	where    string   // the file holding the highest seq, for messages
	recs     []held
}

// lookup returns the hash the archive holds at seq, if it knows.
func (a *archive) lookup(seq int64) ([32]byte, bool) {
	i := sort.Search(len(a.recs), func(i int) bool { return a.recs[i].seq >= seq })
	if i < len(a.recs) && a.recs[i].seq == seq {
		return a.recs[i].hash, true
	}
	return [32]byte{}, false
}

// loadArchive reads what the archive holds at seqs >= from0 (the first
// seq this run sends), and its last record: the newest day files first in
// Dir mode, each plain file from its end backwards, each gzip file whole
// (gzip has no way in from the end; the torn-tail repair reads it whole
// anyway). nil: the archive holds no record.
func loadArchive(cfg Config, from0 int64) (*archive, error) {
	var files []string
	if cfg.Dir {
		entries, err := os.ReadDir(cfg.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, ioError("read directory", err)
		}
		for _, e := range entries {
			d, ok := strings.CutPrefix(e.Name(), "audit-")
			if !ok {
				continue
			}
			if d, ok = strings.CutSuffix(d, ext(cfg.Gzip)); !ok {
				continue
			}
			if _, err := time.Parse(time.DateOnly, d); err == nil {
				files = append(files, filepath.Join(cfg.Path, e.Name()))
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(files)))
	} else {
		files = []string{cfg.Path}
	}
	a := &archive{last: -1}
	var p chain.LineParser
	for _, name := range files {
		min, err := scanFile(name, cfg.Gzip, func(line []byte) bool {
			r, err := p.Parse(line)
			if err != nil || len(r.RecordHash) != 64 {
				return true // a torn or foreign line: not a record the archive holds
			}
			if r.Seq > a.last {
				a.last, a.where = r.Seq, name
			}
			if r.Seq == a.last && a.where == name {
				hex.Decode(a.lastHash[:], r.RecordHash)
			}
			if r.Seq < from0 {
				return cfg.Gzip // plain, read backwards: older lines hold older seqs
			}
			var h held
			h.seq = r.Seq
			if _, err := hex.Decode(h.hash[:], r.RecordHash); err != nil {
				return true
			}
			a.recs = append(a.recs, h)
			if len(a.recs) >= 2*MaxResume {
				a.recs = keepNewest(a.recs)
			}
			return cfg.Gzip || len(a.recs) < MaxResume
		})
		if err != nil {
			return nil, err
		}
		if min >= 0 && min < from0 || !cfg.Gzip && len(a.recs) >= MaxResume {
			break // older files hold older seqs only
		}
	}
	if a.last < 0 {
		return nil, nil // no record: nothing to skip, nothing to link to
	}
	a.recs = keepNewest(a.recs)
	a.from = from0
	if len(a.recs) == MaxResume {
		a.from = a.recs[0].seq
	}
	return a, nil
}

// keepNewest sorts recs by seq and keeps the MaxResume highest.
func keepNewest(recs []held) []held {
	slices.SortStableFunc(recs, func(x, y held) int {
		switch {
		case x.seq < y.seq:
			return -1
		case x.seq > y.seq:
			return 1
		}
		return 0
	})
	if len(recs) > MaxResume {
		recs = append(recs[:0], recs[len(recs)-MaxResume:]...)
	}
	return recs
}

// scanFile calls fn for the lines of name (plain: last to first; gzip:
// first to last) until fn returns false, and returns the lowest seq-like
// position seen, -1 if the file is missing or empty. A gzip file damaged
// part way is read up to the damage: what follows it is a torn tail.
func scanFile(name string, gz bool, fn func([]byte) bool) (int64, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, ioError("open "+name, err)
	}
	defer f.Close()
	var p chain.LineParser
	minSeq := int64(-1)
	see := func(line []byte) bool {
		if r, err := p.Parse(line); err == nil && (minSeq < 0 || r.Seq < minSeq) {
			minSeq = r.Seq
		}
		return fn(line)
	}
	if gz {
		r, err := ndjson.NewReader(f, ndjson.Options{NoValidate: true})
		if err != nil {
			return minSeq, nil // a torn first member: nothing intact
		}
		defer r.Close()
		for {
			l, err := r.Next()
			var le *ndjson.LineError
			switch {
			case err == nil:
				if !see(l.Bytes) {
					return minSeq, nil
				}
			case errors.As(err, &le):
			default:
				return minSeq, nil // io.EOF, or the damage of a torn tail
			}
		}
	}
	fi, err := f.Stat()
	if err != nil {
		return -1, ioError("stat "+name, err)
	}
	err = backwards(f, fi.Size(), see)
	if err != nil {
		return -1, ioError("read "+name, err)
	}
	return minSeq, nil
}

// backwards calls fn for each non-empty line of the first size bytes of
// f, last line first, until fn returns false. Lines longer than
// ndjson.DefaultMaxLine are skipped.
func backwards(f io.ReaderAt, size int64, fn func([]byte) bool) error {
	const chunk = 1 << 20
	var carry []byte // the start of a line whose beginning lies before pos
	tooLong := false
	for pos := size; pos > 0; {
		n := min(chunk, pos)
		pos -= n
		buf := make([]byte, int(n)+len(carry))
		if _, err := f.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		copy(buf[n:], carry)
		end := len(buf)
		for {
			i := bytes.LastIndexByte(buf[:end], '\n')
			if i < 0 {
				break
			}
			if line := buf[i+1 : end]; len(line) > 0 && !tooLong {
				if !fn(line) {
					return nil
				}
			}
			tooLong = false
			end = i
		}
		carry = buf[:end]
		if len(carry) > ndjson.DefaultMaxLine {
			carry, tooLong = carry[:0], true
		}
	}
	if len(carry) > 0 && !tooLong {
		fn(carry)
	}
	return nil
}

// skipHeld marks Duplicate the records the archive already holds and
// reports a Conflict for a record at a seq where the archive holds another
// one. Records it does not know (past the archive's end, below what it
// remembers) are left to be written.
func (s *Sink) skipHeld(records []sink.Record, res sink.Result) error {
	a := s.held
	if a == nil {
		return nil
	}
	var want [32]byte
	for i := range records {
		r := &records[i]
		if res.Status[i] == sink.Pending && r.Seq == a.last+1 && !a.linked && len(r.PrevHash) == 64 {
			if _, err := hex.Decode(want[:], []byte(r.PrevHash)); err == nil && want != a.lastHash {
				unmark(res)
				return &sink.Error{Class: sink.Conflict, Code: -1, Msg: fmt.Sprintf(
					"the archive holds another chain: its last record, seq %d in %s, has recordHash %s, "+
						"but seq %d's prevHash is %q: it does not continue the archive "+
						"(written from another database or exporter, or the database was reset): nothing written or acked; "+
						"move the archive aside or give another --path",
					a.last, a.where, hex.EncodeToString(a.lastHash[:]), r.Seq, r.PrevHash)}
			}
			a.linked = true
		}
		if res.Status[i] != sink.Pending || r.Seq > a.last || r.Seq < a.from {
			continue
		}
		h, ok := a.lookup(r.Seq)
		if !ok {
			continue
		}
		if len(r.Hash) == 64 {
			if _, err := hex.Decode(want[:], []byte(r.Hash)); err == nil && want == h {
				res.Status[i] = sink.Duplicate
				continue
			}
		}
		unmark(res)
		return &sink.Error{Class: sink.Conflict, Code: -1, Msg: fmt.Sprintf(
			"the archive holds another chain: seq %d there has recordHash %s, this record's is %q "+
				"(the archive, newest record seq %d in %s, was written from another database or exporter, "+
				"or the database was reset): nothing written or acked; move the archive aside or give another --path",
			r.Seq, hex.EncodeToString(h[:]), r.Hash, a.last, a.where)}
	}
	return nil
}

// unmark turns the Duplicates of res back to Pending: a Send that fails
// reports nothing done.
func unmark(res sink.Result) {
	for j := range res.Status {
		if res.Status[j] == sink.Duplicate {
			res.Status[j] = sink.Pending
		}
	}
}
