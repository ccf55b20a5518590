package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/framing"
)

// Exit codes as the harness records them: the process's own code, 141 for
// a death by SIGPIPE (as a shell reports it), or killedByUs.
const killedByUs = -9

// proc is one running binary.
type proc struct {
	name string
	cmd  *exec.Cmd
	errb *tailBuf
	done chan struct{}
	code int // valid once done is closed
	// exitAt is when Wait returned (valid once done is closed): the
	// operational suite measures exit times from it.
	exitAt time.Time

	mu     sync.Mutex
	killed bool // we sent SIGKILL
	term   sync.Once
}

// tailBuf keeps the first and the last 32 KiB a process wrote to stderr:
// enough to find a panic, which comes last.
type tailBuf struct {
	mu   sync.Mutex
	head []byte
	tail []byte
}

const keep = 32 << 10

func (b *tailBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := keep - len(b.head); n > 0 {
		b.head = append(b.head, p[:min(n, len(p))]...)
	}
	b.tail = append(b.tail, p...)
	if len(b.tail) > 2*keep {
		b.tail = append(b.tail[:0], b.tail[len(b.tail)-keep:]...)
	}
	return len(p), nil
}

func (b *tailBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.tail) <= len(b.head) {
		return string(b.head)
	}
	return string(b.head) + "\n[...]\n" + string(b.tail)
}

// startProc starts bin/name. stdin and stdout may be nil (/dev/null).
func startProc(bin, name string, stdin, stdout *os.File, env []string, args ...string) (*proc, error) {
	cmd := exec.Command(filepath.Join(bin, name), args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.Env = append(os.Environ(), env...)
	p := &proc{name: name, cmd: cmd, errb: &tailBuf{}, done: make(chan struct{})}
	cmd.Stderr = p.errb
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		err := cmd.Wait()
		p.exitAt = time.Now()
		p.code = exitCode(err)
		close(p.done)
	}()
	return p, nil
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return -1
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		switch ws.Signal() {
		case syscall.SIGPIPE:
			return 141
		case syscall.SIGKILL:
			return killedByUs
		}
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

func (p *proc) kill() {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	p.cmd.Process.Signal(syscall.SIGKILL)
}

// terminate sends SIGTERM, once: a second one would be the documented
// forced stop (exit 130), which a supervisor does not send.
func (p *proc) terminate() { p.term.Do(func() { p.cmd.Process.Signal(syscall.SIGTERM) }) }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to exit, then kills it.
func (p *proc) wait(d time.Duration) (code int, timedOut bool) {
	select {
	case <-p.done:
		return p.code, false
	case <-time.After(d):
		p.kill()
		<-p.done
		return p.code, true
	}
}

// panicked reports whether stderr shows a Go panic or a runtime crash.
func panicked(stderr string) bool {
	return strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") && strings.Contains(stderr, "[running]") ||
		strings.Contains(stderr, "fatal error:")
}

// pipeline is audit-read --follow | audit-verify | audit-batch | relay |
// audit-ship, wired with OS pipes. The relay, in this process, passes
// audit-batch's framing to audit-ship line by line; asked to cut, it
// forwards a batch header and only part of its records, then closes
// audit-ship's input: the restart in the middle of a batch.
type pipeline struct {
	procs  []*proc
	byName map[string]*proc
	anyOut chan struct{} // closed when the first stage exits
	once   sync.Once

	mu  sync.Mutex
	tag string // the fault this pipeline was stopped by, for the exit-code checks

	cut     chan struct{} // closed to ask the relay to cut mid-batch
	cutOnce sync.Once
	cutDone chan struct{} // closed when the relay did
}

func (p *pipeline) setTag(tag string) {
	p.mu.Lock()
	if p.tag == "" {
		p.tag = tag
	}
	p.mu.Unlock()
}

func (p *pipeline) getTag() string { p.mu.Lock(); defer p.mu.Unlock(); return p.tag }

type stageSpec struct {
	name string
	args []string
}

func startPipeline(bin string, env []string, stages []stageSpec) (*pipeline, error) {
	return startPipelineRelay(bin, env, stages, true, nil)
}

// startPipelineRelay is startPipeline, with the relay before audit-ship
// or (relay false) every stage piped straight into the next, as a shell
// does: the operational suite measures how fast a stage sees its reader
// go, which a relay in between would hide. gap, if not nil, is called
// between two starts: a loaded host starts the stages of a shell pipeline
// some milliseconds apart.
func startPipelineRelay(bin string, env []string, stages []stageSpec, relay bool, gap func()) (*pipeline, error) {
	p := &pipeline{byName: map[string]*proc{}, anyOut: make(chan struct{}), cut: make(chan struct{}), cutDone: make(chan struct{})}
	var in *os.File
	closeLater := []*os.File{}
	defer func() {
		for _, f := range closeLater {
			f.Close()
		}
	}()
	for i, s := range stages {
		if i > 0 && gap != nil {
			gap()
		}
		var out *os.File
		var next *os.File
		if i < len(stages)-1 {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			out, next = w, r
			closeLater = append(closeLater, w)
		}
		if relay && s.name == "audit-ship" && in != nil {
			// The relay sits between audit-batch and audit-ship.
			r, w, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			closeLater = append(closeLater, r)
			go p.relay(in, w)
			in = r
		} else if in != nil {
			closeLater = append(closeLater, in)
		}
		pr, err := startProc(bin, s.name, in, out, env, s.args...)
		if err != nil {
			p.killAll()
			return nil, err
		}
		p.procs = append(p.procs, pr)
		p.byName[s.name] = pr
		go func() {
			<-pr.done
			p.once.Do(func() { close(p.anyOut) })
		}()
		in = next
	}
	return p, nil
}

// relay copies framing from src (audit-batch) to dst (audit-ship).
func (p *pipeline) relay(src, dst *os.File) {
	defer src.Close()
	defer dst.Close()
	br := bufio.NewReaderSize(src, 1<<20)
	bw := bufio.NewWriterSize(dst, 256<<10)
	var fj fastjson.Parser
	cutting := false
	left := 0 // records still to forward of the batch being cut
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than the buffer: pass it on in pieces.
			if _, werr := bw.Write(line); werr != nil {
				return
			}
			continue
		}
		if len(line) > 0 {
			if !cutting {
				select {
				case <-p.cut:
					if h, isHeader, herr := framing.ParseHeader(&fj, line[:len(line)-1]); herr == nil && isHeader {
						cutting, left = true, h.Count/2
					}
				default:
				}
			} else {
				left--
			}
			if _, werr := bw.Write(line); werr != nil {
				return
			}
			if cutting && left <= 0 {
				// The header and part of its records are out: stop here,
				// and kill the batcher so nothing else follows.
				bw.Flush()
				close(p.cutDone)
				if b := p.byName["audit-batch"]; b != nil {
					b.kill()
				}
				return
			}
		}
		if err != nil {
			bw.Flush()
			return
		}
		if br.Buffered() == 0 {
			if bw.Flush() != nil {
				return
			}
		}
	}
}

// askCut asks the relay to cut the next batch in the middle.
func (p *pipeline) askCut() { p.cutOnce.Do(func() { close(p.cut) }) }

func (p *pipeline) killAll() {
	for _, pr := range p.procs {
		if !pr.exited() {
			pr.kill()
		}
	}
	for _, pr := range p.procs {
		<-pr.done
	}
}

// stop stops what is still running as a supervisor would: SIGTERM, then
// SIGKILL after grace.
func (p *pipeline) stop(grace time.Duration) {
	for _, pr := range p.procs {
		if !pr.exited() {
			pr.terminate()
		}
	}
	deadline := time.Now().Add(grace)
	for _, pr := range p.procs {
		pr.wait(time.Until(deadline))
	}
}

var _ io.Writer = (*tailBuf)(nil)
