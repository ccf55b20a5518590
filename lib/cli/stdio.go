package cli

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// Why a run was asked to stop. Main reads it to pick the exit code.
const (
	causeNone         int32 = iota
	causeSignal             // the first SIGINT or SIGTERM
	causeOutputClosed       // the reader of stdout went away
)

// ErrStopped and ErrOutputClosed are exitcode's: what a read of stdin
// returns after the first SIGINT/SIGTERM (exit 0), and once stdout's reader
// went away (exit 141).
var (
	ErrStopped      = exitcode.ErrStopped
	ErrOutputClosed = exitcode.ErrOutputClosed
)

// stdioKind is how a file descriptor of the standard streams is handled.
type stdioKind int

const (
	kindPlain  stdioKind = iota // regular file: never blocks for long, read or written as is
	kindPoll                    // pipe, FIFO or socket: non-blocking, waited on with poll(2)
	kindThread                  // anything else (a terminal): read in a goroutine
)

func kindOf(fi fs.FileInfo) stdioKind {
	switch {
	case fi.Mode()&(fs.ModeNamedPipe|fs.ModeSocket) != 0:
		return kindPoll
	case fi.Mode().IsRegular():
		return kindPlain
	}
	return kindThread
}

// pollTick is how often a write blocked on a full pipe looks whether its
// stop grace has run out. (A blocked read needs no tick: Stop wakes it
// through a pipe of its own.)
const pollTick = 100 * time.Millisecond

// Input is the stdin a stage gets from Main: a read blocked on a quiet pipe
// returns ErrStopped on the first SIGINT/SIGTERM, and ErrOutputClosed once
// stdout's reader went away, without losing a byte before that (a pipe is
// read through its non-blocking descriptor and poll(2); a terminal in a
// goroutine whose result the next Read takes).
type Input struct {
	f       *os.File
	fd      int
	fi      fs.FileInfo
	kind    stdioKind
	restore func()

	stop     atomic.Pointer[error]
	stopped  chan struct{}
	stopOnce sync.Once
	wakeMu   sync.Mutex // Stop and Close
	wakeR    int        // a pipe Stop writes to, to wake a blocked poll at once
	wakeW    int

	// kindThread
	pending chan readResult
	left    []byte
	lerr    error
}

type readResult struct {
	b   []byte
	err error
}

// NewInput wraps f (stdin). Close undoes what it changed on f.
func NewInput(f *os.File) *Input {
	in := &Input{f: f, fd: int(f.Fd()), stopped: make(chan struct{}), wakeR: -1, wakeW: -1}
	fi, err := f.Stat()
	if err != nil {
		return in // kindPlain: read as is
	}
	in.fi = fi
	in.kind = kindOf(fi)
	if in.kind == kindPoll {
		fd := in.fd
		was, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		var p [2]int
		if err != nil || unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK) != nil {
			in.kind = kindThread
		} else if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(p[0])
			unix.Close(p[1])
			in.kind = kindThread
		} else {
			in.wakeR, in.wakeW = p[0], p[1]
			in.restore = func() {
				if was&unix.O_NONBLOCK == 0 {
					unix.SetNonblock(fd, false) // shared with whoever reads the pipe after us
				}
			}
		}
	}
	return in
}

// File is the underlying file (for fcntl such as the pipe size).
func (in *Input) File() *os.File { return in.f }

// Stat is the underlying file's.
func (in *Input) Stat() (fs.FileInfo, error) { return in.f.Stat() }

// Stop makes every Read from now on (and one blocked now) return err. The
// first call wins.
func (in *Input) Stop(err error) {
	in.stopOnce.Do(func() {
		in.stop.Store(&err)
		close(in.stopped)
		in.wakeMu.Lock()
		if in.wakeW >= 0 {
			unix.Write(in.wakeW, []byte{0})
		}
		in.wakeMu.Unlock()
	})
}

func (in *Input) stopErr() error {
	if p := in.stop.Load(); p != nil {
		return *p
	}
	return nil
}

// Read reads from stdin until data, the end, an error, or a Stop.
func (in *Input) Read(b []byte) (int, error) {
	if err := in.stopErr(); err != nil {
		return 0, err
	}
	switch in.kind {
	case kindPoll:
		return in.readPoll(b)
	case kindThread:
		return in.readThread(b)
	}
	return in.f.Read(b)
}

func (in *Input) readPoll(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	fd := in.fd
	for {
		n, err := unix.Read(fd, b)
		switch {
		case err == nil && n == 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return 0, &os.PathError{Op: "read", Path: in.f.Name(), Err: err}
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(in.wakeR), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return 0, &os.PathError{Op: "poll", Path: in.f.Name(), Err: err}
		}
		if err := in.stopErr(); err != nil {
			return 0, err
		}
	}
}

func (in *Input) readThread(b []byte) (int, error) {
	if len(in.left) == 0 && in.lerr == nil {
		if in.pending == nil {
			ch := make(chan readResult, 1)
			in.pending = ch
			size := max(len(b), 64<<10)
			go func() {
				buf := make([]byte, size)
				n, err := in.f.Read(buf)
				ch <- readResult{buf[:n], err}
			}()
		}
		select {
		case r := <-in.pending:
			in.pending = nil
			in.left, in.lerr = r.b, r.err
		case <-in.stopped:
			return 0, in.stopErr()
		}
	}
	n := copy(b, in.left)
	in.left = in.left[n:]
	if len(in.left) == 0 && in.lerr != nil {
		err := in.lerr
		in.lerr = nil
		if n > 0 && err == io.EOF {
			in.lerr = io.EOF // next call
			return n, nil
		}
		return n, err
	}
	return n, nil
}

// Close puts the descriptor back as it was.
func (in *Input) Close() error {
	if in.restore != nil {
		in.restore()
		in.restore = nil
	}
	in.wakeMu.Lock()
	defer in.wakeMu.Unlock()
	if in.wakeR >= 0 {
		unix.Close(in.wakeR)
		unix.Close(in.wakeW)
		in.wakeR, in.wakeW = -1, -1
	}
	return nil
}

// Output is the stdout a stage gets from Main. Writes to a pipe go through
// its non-blocking descriptor and poll(2), so a stage blocked on a
// downstream that does not read is not stuck there after a stop: after the
// first SIGINT/SIGTERM it may still write for StopGrace (the downstream is
// stopping too, or takes the rest), then a write that would block returns
// ErrStopped, but only between lines (it finishes a line it began, for at
// most StopGrace more), so the downstream never sees half a line. A broken
// pipe after a stop is ErrStopped too: a downstream that stopped first is
// part of a clean stop.
type Output struct {
	f        *os.File
	fd       int
	kind     stdioKind
	restore  func()
	state    *runState
	lineOpen bool   // the last byte written was not '\n'
	unwatch  func() // ends Main's watch of stdout
}

// OutputUnused tells Main that the stage does not use stdout (audit-ship
// with --acks FIFO): its reader going away is then no reason to stop.
func OutputUnused(w io.Writer) {
	if o, ok := w.(*Output); ok && o.unwatch != nil {
		o.unwatch()
	}
}

// StopGrace is how long a stopping stage may still wait for its downstream
// to take what it writes.
var StopGrace = 500 * time.Millisecond

// NewOutput wraps f (stdout).
func NewOutput(f *os.File, st *runState) *Output {
	o := &Output{f: f, fd: int(f.Fd()), state: st, kind: kindPlain}
	fi, err := f.Stat()
	if err != nil || kindOf(fi) != kindPoll {
		return o
	}
	// stderr on the same pipe (2>&1) shares the descriptor's flags: a
	// non-blocking stderr would lose messages. Then writes block as before.
	if efi, err := os.Stderr.Stat(); err == nil && os.SameFile(fi, efi) {
		return o
	}
	fd := o.fd
	was, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil || unix.SetNonblock(fd, true) != nil {
		return o
	}
	o.kind = kindPoll
	o.restore = func() {
		if was&unix.O_NONBLOCK == 0 {
			unix.SetNonblock(fd, false)
		}
	}
	return o
}

// File is the underlying file.
func (o *Output) File() *os.File { return o.f }

// Stat is the underlying file's.
func (o *Output) Stat() (fs.FileInfo, error) { return o.f.Stat() }

// Write writes b, or stops as the type's comment says.
func (o *Output) Write(b []byte) (int, error) {
	if o.kind != kindPoll {
		n, err := o.f.Write(b)
		if n > 0 {
			o.lineOpen = b[n-1] != '\n'
		}
		return n, o.stopped(err)
	}
	fd := o.fd
	done := 0
	for done < len(b) {
		chunk := b[done:]
		if !o.lineOpen && !o.roomFor(len(chunk)) {
			// The pipe is (nearly) full: write whole lines, at most
			// PIPE_BUF at a time, which the kernel takes whole or not at
			// all, so that a stop never leaves half a line in the pipe.
			// A longer line goes out as it fits (the one case a stop
			// against a downstream stuck for 2*StopGrace can cut).
			chunk = lineChunk(chunk)
		}
		n, err := unix.Write(fd, chunk)
		if n > 0 {
			done += n
			o.lineOpen = b[done-1] != '\n'
		}
		switch {
		case err == nil || err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return done, o.stopped(&os.PathError{Op: "write", Path: o.f.Name(), Err: err})
		}
		if at := o.state.stopAt(); !at.IsZero() {
			past := time.Since(at)
			if past > StopGrace && !o.lineOpen || past > 2*StopGrace {
				return done, ErrStopped
			}
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(fds, int(pollTick/time.Millisecond)); err != nil && err != unix.EINTR {
			return done, &os.PathError{Op: "poll", Path: o.f.Name(), Err: err}
		}
	}
	return done, nil
}

// pipeBuf is PIPE_BUF: a write of at most this many bytes to a pipe is
// atomic.
const pipeBuf = 4096

// roomFor reports whether the pipe surely has room for n more bytes: its
// capacity less what is unread, less two pages of slack (a partly read
// first page, a partly filled last one).
func (o *Output) roomFor(n int) bool {
	size, err := unix.FcntlInt(uintptr(o.fd), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		return true // not a pipe (a socket): written as it comes
	}
	unread, err := unix.IoctlGetInt(o.fd, unix.TIOCINQ) // FIONREAD
	if err != nil {
		return true
	}
	return n+unread+2*pipeBuf <= size
}

// lineChunk is the longest prefix of b made of whole lines and at most
// pipeBuf bytes long, or the first line if it alone is longer (or b if it
// holds no newline).
func lineChunk(b []byte) []byte {
	lim := b
	if len(lim) > pipeBuf {
		lim = lim[:pipeBuf]
	}
	if i := bytes.LastIndexByte(lim, '\n'); i >= 0 {
		return b[:i+1]
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i+1]
	}
	return b
}

// stopped turns a broken pipe after a stop signal into ErrStopped.
func (o *Output) stopped(err error) error {
	if err != nil && o.state.cause.Load() == causeSignal && isPipe(err) {
		return ErrStopped
	}
	return err
}

func isPipe(err error) bool { return errors.Is(err, syscall.EPIPE) }

// Close puts the descriptor back as it was.
func (o *Output) Close() error {
	if o.restore != nil {
		o.restore()
		o.restore = nil
	}
	return nil
}

// watchClosed calls closed once the reader of f (a pipe, FIFO or socket)
// went away: poll(2) reports POLLERR (pipe) or POLLHUP (socket) on the
// write end. It returns a func that ends the watch.
func watchClosed(f *os.File, closed func()) (stop func()) {
	fd := int32(f.Fd())
	fi, err := f.Stat()
	// Pipes and FIFOs only: a socket (the journal's stream) reports
	// hang-ups with other meanings.
	if err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		return func() {}
	}
	var p [2]int
	if unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK) != nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fds := []unix.PollFd{{Fd: fd, Events: 0}, {Fd: int32(p[0]), Events: unix.POLLIN}}
		for {
			fds[0].Revents, fds[1].Revents = 0, 0
			_, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if err != nil || fds[1].Revents != 0 {
				return
			}
			if fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
				closed()
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			unix.Write(p[1], []byte{0})
			<-done
			unix.Close(p[0])
			unix.Close(p[1])
		})
	}
}

// runState is what Main knows about why the run stops.
type runState struct {
	cause  atomic.Int32
	stopNs atomic.Int64
}

func (s *runState) stopAt() time.Time {
	if ns := s.stopNs.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// set records the first cause; it reports whether this call was first.
func (s *runState) set(cause int32) bool {
	if s.cause.CompareAndSwap(causeNone, cause) {
		s.stopNs.Store(time.Now().UnixNano())
		return true
	}
	return false
}

// MarksFor says whether a stage writes in-band mark lines to stdout by
// default: to a pipe, a FIFO or a socket (the next stage), not into a
// regular file or onto a terminal, since an export holds records only and
// audit-verify does not trust a mark found in a file.
func MarksFor(stdout io.Writer) bool {
	if o, ok := stdout.(interface{ File() *os.File }); ok && o.File() != nil {
		stdout = o.File()
	}
	f, ok := stdout.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return true
	}
	fi, err := f.Stat()
	if err != nil {
		return true
	}
	return !fi.Mode().IsRegular() && fi.Mode()&os.ModeCharDevice == 0
}
