package auditcheckpoint

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/auditpipe/auditpipe/lib/checkpoint"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

// seal --emit-checkpoints (issue 16 item 1; docs/design.md "Checkpoints in
// the SIEM"): every checkpoint appended to --out, and every cosigned note,
// is also written on stdout as a checkpoint line (framing.IsCheckpoint),
// for audit-batch and audit-ship to carry to the SIEM as an event of its
// own.
//
// Where it goes: a note is queued when it is made and written by whoever
// holds the output next, the stream between records or the timer while
// input is idle, always with emitter.mu held and never between a record's
// add to the tree and its write. So a checkpoint of size N comes right
// after record N (never later), and a cosigned note after the record that
// was last when it arrived.
//
// Restart: acks cover records, are released in order and only for
// batches delivered whole, so a cursor at seq R means every line before
// record R's batch end is in the SIEM, and the lines that can be lost are
// those after record R. On restart at R+1 the plain checkpoints among them
// have a size >= R (each came right after its record); the cosigned ones
// may be of any size but are superseded by a newer cosigned note. So
// seal, at its first record F, reads --out (as it was then) and emits every
// note of size >= F-1 as the replay passes its record, the newest cosigned
// note below F-1 at once, and any cosigned note below F-1 appended after
// the first note of size >= F-1 (it arrived late, after record F-1). What
// the SIEM then holds is every checkpoint, and the newest witnessed view;
// duplicates are harmless (the same note; Elastic's _id is its hash).
type emitter struct {
	on     bool
	mu     sync.Mutex // held by the stream from a record's add to its write, and by every note writer
	w      *ndjson.Writer
	replay *replayer
	n      int64 // checkpoint lines written
}

// queueLocked queues msg for stdout (s.mu held).
func (s *sealer) queueLocked(msg []byte) {
	if s.em != nil && s.em.on {
		s.pending = append(s.pending, append([]byte(nil), msg...))
	}
}

// writePending writes the queued notes (em.mu held).
func (s *sealer) writePending() error {
	if !s.em.on {
		return nil
	}
	s.mu.Lock()
	p := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, msg := range p {
		if err := s.em.writeNote(msg); err != nil {
			return err
		}
	}
	return nil
}

// writeNote writes msg as a checkpoint line (em.mu held).
func (em *emitter) writeNote(msg []byte) error {
	var b bytes.Buffer
	checkpoint.AppendCheckpoint(&b, msg) // a bytes.Buffer does not fail
	if err := em.w.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n"))); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	em.n++
	return nil
}

// flushNotes writes the queued notes and flushes stdout, from the timer,
// the witness goroutine or the end of the run.
func (s *sealer) flushNotes() error {
	if s.em == nil || !s.em.on {
		return nil
	}
	s.em.mu.Lock()
	defer s.em.mu.Unlock()
	s.mu.Lock()
	empty := len(s.pending) == 0
	s.mu.Unlock()
	if empty {
		return nil
	}
	if err := s.writePending(); err != nil {
		return err
	}
	return s.em.w.Flush()
}

// replayer re-emits the notes of --out for a stream that starts inside
// the sealed part (see emitter).
type replayer struct {
	f    *os.File
	sc   *bufio.Scanner
	next []byte // the next note to emit, nil at the end
	size int64  // its size
}

// openReplay opens path as it stands (limit bytes) for a stream starting
// at seq first, and returns the newest cosigned note below first-1 (to
// emit at once), if any.
func openReplay(path string, first int64) (*replayer, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	r := &replayer{f: f, sc: bufio.NewScanner(io.NewSectionReader(f, 0, st.Size()))}
	r.sc.Buffer(make([]byte, 0, 4096), 4*checkpoint.MaxNoteSize)
	var older []byte
	for {
		if err := r.scan(); err != nil || r.next == nil {
			return r, older, err
		}
		if r.size >= first-1 {
			return r, older, nil
		}
		if cosigned(r.next) {
			older = r.next
		}
	}
}

// scan reads the next checkpoint note into r.next (nil at the end);
// rotation lines and lines verify would call malformed are skipped.
func (r *replayer) scan() error {
	r.next = nil
	for r.sc.Scan() {
		if !framing.IsCheckpoint(r.sc.Bytes()) {
			continue
		}
		note, size, err := framing.ParseCheckpoint(nil, r.sc.Bytes())
		if err != nil {
			continue
		}
		r.next, r.size = note, size
		return nil
	}
	return r.sc.Err()
}

// upTo writes every note up to the first of a size past seq (em.mu held).
func (r *replayer) upTo(em *emitter, seq int64) error {
	for r.next != nil && r.size <= seq {
		if err := em.writeNote(r.next); err != nil {
			return err
		}
		if err := r.scan(); err != nil {
			return fmt.Errorf("re-read %s: %w", r.f.Name(), err)
		}
	}
	return nil
}

func (r *replayer) close() {
	if r != nil {
		r.f.Close()
	}
}

// cosigned reports whether note carries more than one signature.
func cosigned(note []byte) bool { return bytes.Count(note, []byte("\n\u2014 ")) > 1 }
