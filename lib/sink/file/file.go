// Package file is the sink that needs no network: it appends record lines to
// a local file, and so doubles as a local archive of what was shipped.
//
// # What is written
//
// Send appends each record's Line exactly as received plus "\n", so the file
// is itself a valid audit-read / audit-verify input for forensic replay
// (`audit-verify < audit.ndjson`, or `cat audit-*.ndjson.gz | audit-verify`).
// A batch is durable before Send reports it Delivered: the write is followed
// by fsync (and, for a new file, an fsync of its directory). NoFsync drops
// that guarantee for speed.
//
// With Gzip, each Send writes one complete gzip member. A file of
// concatenated members is a valid gzip file (gzip -d, zcat, Go's gzip.Reader
// in its default multistream mode read it whole), and a crash during one Send
// cannot damage the members before it.
//
// Files are created 0600 and missing directories 0700; existing ones keep
// their modes.
//
// # One file or one file per day
//
// Without Dir, Path is the file. With Dir, Path is a directory holding one
// file per UTC day, audit-YYYY-MM-DD.ndjson (.ndjson.gz with Gzip). A batch
// goes whole into one file: the day of its first record's ts, except that the
// sink never goes back to an earlier day than the newest file in the
// directory (looked up when the sink first opens a file, then tracked). So a
// batch straddling midnight stays in the earlier day's file, a clock stepping
// back or a replay of old records lands in the newest file, and listing the
// files in name order always gives the records in the order they were
// shipped: `cat $(ls audit-*)` is the chain (with at-least-once duplicates).
// Naming by day rather than by size keeps names deterministic and lets
// retention be a plain `find -mtime` or `rm audit-2025-*`.
//
// # A torn tail after a crash
//
// A crash (or a failed write, such as ENOSPC) in the middle of an append can
// leave the file ending in part of a batch. Those records were never
// reported Delivered, so the shipper sends them again; the sink only has to
// keep the torn bytes from spoiling what follows. When it opens a file:
//
//   - Plain: if the file is non-empty and does not end in "\n", it writes a
//     "\n" first, so the torn line stays a line of its own and never merges
//     with the next record. Readers see it as one malformed line (bad_json,
//     or a NUL line if the filesystem left zeros) followed by intact records;
//     nothing already written is ever changed.
//   - Gzip: a torn member cannot be isolated inside a gzip stream (readers
//     would fail at it and never reach the members after it), so the sink
//     finds the end of the last complete member, copies the torn bytes to
//     <file>.torn-<unix-nanoseconds> (0600), and truncates the file there.
//     Finding that end means decompressing the whole file once per open.
//
// After a failed write or fsync the sink closes the file and reopens it (with
// the repair above) at the next Send.
//
// A Gzip setting that does not match an existing non-empty file (gzip magic
// 1f 8b present or not) is a configuration error, never a mixed file.
//
// # Exactly once across restarts
//
// The shipper acks a batch only after Send, and a restart resends what was
// not acked; a file sink can see what its archive already holds, so it
// does not write it twice. On the first Send, loadArchive reads the
// archive's records back to the batch's first seq (the file, or in Dir
// mode the newest day files until one starts below that seq; a plain file
// from its end backwards, a gzip file whole), keeping at most MaxResume of
// the newest (seq, recordHash) pairs. Then every record whose seq the
// archive holds with the same recordHash is Duplicate and not written (the
// shipper still acks it); one whose seq the archive holds with another
// recordHash fails the Send with a sink.Conflict naming both hashes,
// nothing written: the archive holds another chain. So does a record at
// the seq after the archive's last whose prevHash is not that record's
// recordHash (it does not continue the archive). Records past the
// archive's end, or below what was remembered, are written.
//
// # Errors
//
// Send fails with a *sink.Error: Config for permission problems, a format
// mismatch or a closed sink; Retryable for other I/O errors (a full disk
// may clear). A record whose Line is empty or holds a "\n" (it cannot be one
// NDJSON line) is reported Poison and not written.
package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// Config says where and how to write.
type Config struct {
	// Path is the file, or with Dir the directory of per-day files.
	Path string
	// Dir makes Path a directory holding audit-YYYY-MM-DD.ndjson[.gz].
	Dir bool
	// Gzip writes each Send as one gzip member.
	Gzip bool
	// NoFsync skips the fsync before Send returns: faster, but a batch
	// reported Delivered can be lost in a power failure. The zero value is
	// the safe default.
	NoFsync bool
}

// Sink appends record lines to a file. It implements sink.Sink.
type Sink struct {
	cfg Config
	// lock is a FIFO lock (waiters on a channel are served in arrival
	// order), so concurrent Sends are written in the order they were called.
	lock chan struct{}

	// Guarded by lock.
	closed  bool
	f       *os.File
	name    string // f's path
	minDay  string // Dir mode: never open a day before this
	scanned bool   // Dir mode: minDay has been read from the directory
	buf     bytes.Buffer
	zbuf    bytes.Buffer
	loaded  bool     // held has been read from the archive
	held    *archive // what the archive held at start, nil: nothing this run sends
	zw      *gzip.Writer
}

var _ sink.Sink = (*Sink)(nil)

// New returns a sink for cfg. It opens nothing: Check probes the path, and
// the first Send opens (and if need be repairs) the file.
func New(cfg Config) (*Sink, error) {
	if cfg.Path == "" {
		return nil, errors.New("new file sink: empty path")
	}
	return &Sink{cfg: cfg, lock: make(chan struct{}, 1)}, nil
}

// FileName is the name of the Dir-mode file for the UTC day of t.
func FileName(t time.Time, gz bool) string {
	return "audit-" + t.UTC().Format(time.DateOnly) + ext(gz)
}

func ext(gz bool) string {
	if gz {
		return ".ndjson.gz"
	}
	return ".ndjson"
}

func (s *Sink) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err // select would pick at random when both are ready
	}
	select {
	case s.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Sink) release() { <-s.lock }

// Send appends the records' lines as one write and, unless NoFsync, fsyncs
// before returning. Concurrent calls are serialised in call order.
func (s *Sink) Send(ctx context.Context, records []sink.Record) (sink.Result, error) {
	if sink.HasCheckpoints(records) {
		return sink.RefuseCheckpoints(ctx, records, checkpointRefused, s.Send)
	}
	res := sink.NewResult(len(records))
	if err := s.acquire(ctx); err != nil {
		return res, err
	}
	defer s.release()
	if s.closed {
		return res, &sink.Error{Class: sink.Config, Code: -1, Msg: "file sink is closed"}
	}

	s.buf.Reset()
	first := -1
	for i, r := range records {
		switch {
		case len(r.Line) == 0:
			res.Status[i], res.Reason[i] = sink.Poison, "empty record line"
			continue
		case bytes.IndexByte(r.Line, '\n') >= 0:
			res.Status[i], res.Reason[i] = sink.Poison, "record line contains a newline"
			continue
		}
		if first < 0 {
			first = i
		}
	}
	if first < 0 {
		return res, nil
	}
	if !s.loaded {
		a, err := loadArchive(s.cfg, records[first].Seq)
		if err != nil {
			return res, err
		}
		s.held, s.loaded = a, true
	}
	if err := s.skipHeld(records, res); err != nil {
		return res, err
	}
	first = -1
	for i, r := range records {
		if res.Status[i] != sink.Pending {
			continue
		}
		if first < 0 {
			first = i
		}
		s.buf.Write(r.Line)
		s.buf.WriteByte('\n')
	}
	if first < 0 {
		return res, nil // the archive holds them all
	}
	// From here on ctx is not consulted: a local append is short, and
	// stopping half-way would only leave a torn tail.
	if err := s.open(records[first].TS); err != nil {
		return res, err
	}
	data := s.buf.Bytes()
	if s.cfg.Gzip {
		var err error
		if data, err = s.gzipMember(data); err != nil {
			return res, ioError("compress batch", err)
		}
	}
	if _, err := s.f.Write(data); err != nil {
		s.drop()
		return res, ioError("write "+s.name, err)
	}
	if !s.cfg.NoFsync {
		if err := s.f.Sync(); err != nil {
			s.drop()
			return res, ioError("fsync "+s.name, err)
		}
	}
	return res.All(sink.Delivered), nil
}

// gzipMember returns data compressed as one complete gzip member.
func (s *Sink) gzipMember(data []byte) ([]byte, error) {
	s.zbuf.Reset()
	if s.zw == nil {
		s.zw = gzip.NewWriter(&s.zbuf)
	} else {
		s.zw.Reset(&s.zbuf)
	}
	if _, err := s.zw.Write(data); err != nil {
		return nil, err
	}
	if err := s.zw.Close(); err != nil {
		return nil, err
	}
	return s.zbuf.Bytes(), nil
}

// open makes s.f the file a batch whose first record has ts (ms) goes to.
func (s *Sink) open(ts int64) error {
	name := s.cfg.Path
	day := ""
	if s.cfg.Dir {
		if !s.scanned {
			d, err := newestDay(s.cfg.Path, s.cfg.Gzip)
			if err != nil {
				return err
			}
			s.minDay, s.scanned = d, true
		}
		day = time.UnixMilli(ts).UTC().Format(time.DateOnly)
		if day < s.minDay {
			day = s.minDay
		}
		name = filepath.Join(s.cfg.Path, "audit-"+day+ext(s.cfg.Gzip))
	}
	if s.f != nil && s.name == name {
		return nil
	}
	if s.f != nil {
		s.drop()
	}
	f, err := openFile(name, s.cfg.Gzip, !s.cfg.NoFsync)
	if err != nil {
		return err
	}
	s.f, s.name = f, name
	if day > s.minDay {
		s.minDay = day
	}
	return nil
}

// drop closes the current file; the next Send reopens it.
func (s *Sink) drop() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// newestDay returns the latest day among dir's day files, "" if none.
func newestDay(dir string, gz bool) (string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", ioError("read directory", err)
	}
	newest := ""
	for _, e := range entries {
		d, ok := strings.CutPrefix(e.Name(), "audit-")
		if !ok {
			continue
		}
		d, ok = strings.CutSuffix(d, ext(gz))
		if !ok {
			continue
		}
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			continue
		}
		newest = max(newest, d)
	}
	return newest, nil
}

// openFile opens name for appending, creating it (0600) and its directory
// (0700) as needed, and repairs a torn tail (see the package doc).
func openFile(name string, gz, sync bool) (*os.File, error) {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, ioError("create directory", err)
	}
	const flags = os.O_RDWR | os.O_APPEND
	f, err := os.OpenFile(name, flags|os.O_CREATE|os.O_EXCL, 0o600)
	created := err == nil
	if errors.Is(err, fs.ErrExist) {
		f, err = os.OpenFile(name, flags, 0)
	}
	if err != nil {
		return nil, ioError("open file", err)
	}
	if created && sync {
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := repair(f, gz, sync); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// repair checks an existing file's format against gz and isolates or
// removes a torn tail. f is open with O_APPEND.
func repair(f *os.File, gz, sync bool) error {
	fi, err := f.Stat()
	if err != nil {
		return ioError("stat "+f.Name(), err)
	}
	size := fi.Size()
	if size > 0 {
		head := make([]byte, 2)
		n, err := f.ReadAt(head, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return ioError("read "+f.Name(), err)
		}
		isGz := n == 2 && head[0] == 0x1f && head[1] == 0x8b
		// A one-byte 1f is a gzip header torn after its first byte.
		tornGz := n == 1 && head[0] == 0x1f
		if gz && !isGz && !tornGz {
			return &sink.Error{Class: sink.Config, Code: -1, Msg: f.Name() + " is not gzip but the sink is set to gzip"}
		}
		if !gz && isGz {
			return &sink.Error{Class: sink.Config, Code: -1, Msg: f.Name() + " is gzip but the sink is not set to gzip"}
		}
	}
	if size > 0 && !gz {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, size-1); err != nil {
			return ioError("read "+f.Name(), err)
		}
		if last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				return ioError("repair torn tail of "+f.Name(), err)
			}
			if sync {
				if err := f.Sync(); err != nil {
					return ioError("fsync "+f.Name(), err)
				}
			}
		}
	}
	if size > 0 && gz {
		good, err := gzipGoodEnd(f)
		if err != nil {
			return err
		}
		if good < size {
			if err := saveTorn(f, good, size, sync); err != nil {
				return err
			}
			if err := f.Truncate(good); err != nil {
				return ioError("truncate torn tail of "+f.Name(), err)
			}
			if sync {
				if err := f.Sync(); err != nil {
					return ioError("fsync "+f.Name(), err)
				}
			}
		}
	}
	return nil
}

// gzipGoodEnd returns the offset just past the last complete gzip member of
// f: the whole file, unless its tail is torn.
func gzipGoodEnd(f *os.File) (int64, error) {
	cr := &countingReader{r: io.NewSectionReader(f, 0, 1<<62)}
	// A bufio.Reader is a flate.Reader, so the gzip reader consumes exactly
	// one member's bytes from it and the member boundary can be computed.
	br := bufio.NewReaderSize(cr, 64<<10)
	var zr gzip.Reader
	var good int64
	for {
		if _, err := br.Peek(1); err != nil {
			if cr.err != nil {
				return 0, ioError("read "+f.Name(), cr.err)
			}
			return good, nil
		}
		err := zr.Reset(br)
		if err == nil {
			zr.Multistream(false)
			_, err = io.Copy(io.Discard, &zr)
		}
		if cr.err != nil {
			return 0, ioError("read "+f.Name(), cr.err)
		}
		if err != nil {
			break
		}
		good = cr.n - int64(br.Buffered())
	}
	// The member at good is incomplete or damaged. After a crash that is the
	// last one (each Send writes one member and fsyncs before the next), maybe
	// followed by zeros; if a complete member follows, the damage is in the
	// middle of the file and cutting there would lose delivered records.
	if intactMemberAfter(f, good) {
		return 0, &sink.Error{Class: sink.Config, Code: -1, Msg: fmt.Sprintf(
			"%s is damaged at offset %d, before intact gzip members; move it aside", f.Name(), good)}
	}
	return good, nil
}

// maxTorn bounds the tail intactMemberAfter searches; a torn tail is at most
// one batch (and some filesystem zero fill).
const maxTorn = 64 << 20

// intactMemberAfter reports whether a complete gzip member starts anywhere in
// f after offset from (or the tail is too long to be one torn batch).
func intactMemberAfter(f *os.File, from int64) bool {
	fi, err := f.Stat()
	if err != nil || fi.Size()-from > maxTorn {
		return true
	}
	tail := make([]byte, fi.Size()-from)
	if _, err := f.ReadAt(tail, from); err != nil {
		return true
	}
	magic := []byte{0x1f, 0x8b, 0x08}
	var zr gzip.Reader
	for i := 1; ; {
		j := bytes.Index(tail[i:], magic)
		if j < 0 {
			return false
		}
		i += j
		if zr.Reset(bytes.NewReader(tail[i:])) == nil {
			zr.Multistream(false)
			if _, err := io.Copy(io.Discard, &zr); err == nil {
				return true
			}
		}
		i++
	}
}

// countingReader counts bytes read and keeps the first error other than EOF.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && c.err == nil {
		c.err = err
	}
	return n, err
}

// saveTorn copies f's bytes [from, to) to a new <name>.torn-<ns> file.
func saveTorn(f *os.File, from, to int64, sync bool) error {
	name := f.Name() + ".torn-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	t, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return ioError("save torn tail", err)
	}
	_, err = io.Copy(t, io.NewSectionReader(f, from, to-from))
	if err == nil && sync {
		err = t.Sync()
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return ioError("save torn tail", err)
	}
	return nil
}

// syncDir fsyncs a directory so a new entry in it survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return ioError("open directory", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return ioError("fsync directory "+dir, err)
	}
	return nil
}

// ioError wraps a local I/O error as a sink error: a permission problem is
// configuration, anything else may clear (a full disk) and is retryable.
func ioError(what string, err error) error {
	var se *sink.Error
	if errors.As(err, &se) {
		return se
	}
	class := sink.Retryable
	if errors.Is(err, fs.ErrPermission) {
		class = sink.Config
	}
	return &sink.Error{Class: class, Code: -1, Msg: fmt.Sprintf("%s: %v", what, err)}
}

// Check verifies that the sink can write: it creates the directory if
// missing, creates and removes a probe file in it, and for an existing
// target file checks it opens for writing and matches the Gzip setting.
func (s *Sink) Check(ctx context.Context) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer s.release()
	dir := filepath.Dir(s.cfg.Path)
	if s.cfg.Dir {
		dir = s.cfg.Path
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("check file sink: %w", err)
	}
	p, err := os.CreateTemp(dir, ".auditpipe-check-*")
	if err != nil {
		return fmt.Errorf("check file sink: directory %s is not writable: %w", dir, err)
	}
	p.Close()
	os.Remove(p.Name())
	if s.cfg.Dir {
		return nil
	}
	f, err := os.OpenFile(s.cfg.Path, os.O_WRONLY|os.O_APPEND, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check file sink: %w", err)
	}
	defer f.Close()
	r, err := os.Open(s.cfg.Path)
	if err != nil {
		return fmt.Errorf("check file sink: %w", err)
	}
	defer r.Close()
	head := make([]byte, 2)
	n, _ := io.ReadFull(r, head)
	isGz := n == 2 && head[0] == 0x1f && head[1] == 0x8b
	if n == 2 && isGz != s.cfg.Gzip {
		return fmt.Errorf("check file sink: %s: gzip is %v in the file but %v in the configuration", s.cfg.Path, isGz, s.cfg.Gzip)
	}
	return nil
}

// Close closes the open file. Later Sends fail; Close again is a no-op.
func (s *Sink) Close() error {
	s.lock <- struct{}{}
	defer s.release()
	s.closed = true
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", s.name, err)
	}
	return nil
}

// checkpointRefused is the Reason of a checkpoint line (seal
// --emit-checkpoints) given to the file sink: an archive holds record
// lines only (seal's --out file is its checkpoints' copy).
const checkpointRefused = "a checkpoint line, not a record: the file sink archives records only (seal's --out file is the checkpoints' copy); run audit-checkpoint seal without --emit-checkpoints before a file audit-ship"
