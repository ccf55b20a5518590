package vlogs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// EnvBinary names the environment variable that overrides where the
// victoria-logs binary is.
const EnvBinary = "AUDITPIPE_VICTORIALOGS"

// binaryName is the name go install gives the binary.
const binaryName = "victoria-logs"

// Defaults for Options.
const (
	DefaultReadyTimeout = 20 * time.Second
	DefaultStopTimeout  = 10 * time.Second
)

// logTailSize is how much of the server's log a Server keeps for errors.
const logTailSize = 16 << 10

// Options configures Start. The zero value is ready to use.
type Options struct {
	// Binary is the victoria-logs executable. Default: $AUDITPIPE_VICTORIALOGS,
	// else <module root>/.tools/bin/victoria-logs (the module root is the first
	// directory holding go.mod, walking up from the working directory), else
	// "victoria-logs" looked up in PATH.
	Binary string
	// DataDir is -storageDataPath. Default: a new temporary directory that
	// Stop removes. A caller-given directory is kept.
	DataDir string
	// Addr is the host:port to listen on. Default: 127.0.0.1 and a free port
	// (picked by listening on :0 and closing; if another process takes the
	// port before the server binds it, Start tries again with a new one).
	Addr string
	// Stderr receives the server's log (stdout and stderr). Default: discarded.
	// In every case the last 16 KiB are kept for errors and for Log.
	Stderr io.Writer
	// Args are extra flags, appended after the defaults (see Start); a scalar
	// flag given here overrides its default. Do not repeat -httpListenAddr.
	Args []string
	// ReadyTimeout bounds the wait for GET /health. Default 20 s.
	ReadyTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	// Default 10 s.
	StopTimeout time.Duration
}

// Server is a running victoria-logs process. Its methods are safe for
// concurrent use.
type Server struct {
	addr        string
	url         string
	dataDir     string
	tempDir     bool
	stopTimeout time.Duration
	client      *http.Client
	log         *tailBuffer

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // cmd.Wait's result, set before done is closed

	stopOnce sync.Once
	stopErr  error
}

// Start runs victoria-logs and returns once GET /health answers 200. The
// command line is
//
//	victoria-logs -httpListenAddr=ADDR -storageDataPath=DIR -loggerLevel=WARN
//	    -retentionPeriod=100y -futureRetention=100y -inmemoryDataFlushInterval=1s
//	    -insert.maxLineSizeBytes=64MiB [opt.Args...]
//
// The generous retention keeps records of any age a test sends (by default
// VictoriaLogs rejects rows older than 7 days or more than 2 days ahead), and
// the line size matches auditpipe's default --max-line (VictoriaLogs' default
// of 256 KiB silently drops longer Elasticsearch bulk lines).
//
// ctx bounds only the start: once Start has returned, the server runs until
// Stop. The server is put in its own process group, so a terminal's Ctrl-C
// reaches the caller (which then calls Stop) rather than the server; on
// Linux the server also gets SIGKILL if the calling process dies. If Start
// fails, nothing is left running and a temporary DataDir is removed; the
// error carries the tail of the server's log.
func Start(ctx context.Context, opt Options) (*Server, error) {
	bin := opt.Binary
	if bin == "" {
		var err error
		if bin, err = findBinary(); err != nil {
			return nil, fmt.Errorf("start victoria-logs: %w", err)
		}
	}
	if opt.ReadyTimeout <= 0 {
		opt.ReadyTimeout = DefaultReadyTimeout
	}
	if opt.StopTimeout <= 0 {
		opt.StopTimeout = DefaultStopTimeout
	}
	dataDir, tempDir := opt.DataDir, false
	if dataDir == "" {
		d, err := os.MkdirTemp("", "auditpipe-vlogs-*")
		if err != nil {
			return nil, fmt.Errorf("start victoria-logs: %w", err)
		}
		dataDir, tempDir = d, true
	}
	cleanup := func() {
		if tempDir {
			os.RemoveAll(dataDir)
		}
	}

	// A picked port can be taken by someone else before the server binds it;
	// that shows as an early exit mentioning the address, so pick again.
	const attempts = 3
	var lastErr error
	for range attempts {
		addr := opt.Addr
		if addr == "" {
			a, err := freeAddr()
			if err != nil {
				cleanup()
				return nil, fmt.Errorf("start victoria-logs: %w", err)
			}
			addr = a
		}
		s, err := start(ctx, bin, addr, dataDir, tempDir, opt)
		if err == nil {
			return s, nil
		}
		lastErr = err
		var ee *exitError
		if opt.Addr != "" || !errors.As(err, &ee) || !strings.Contains(ee.tail, "address already in use") {
			break
		}
	}
	cleanup()
	return nil, lastErr
}

// exitError is a server that exited before it was ready.
type exitError struct {
	err  error
	tail string
}

func (e *exitError) Error() string {
	return fmt.Sprintf("start victoria-logs: exited before ready (%v); log tail:\n%s", e.err, e.tail)
}

func (e *exitError) Unwrap() error { return e.err }

func start(ctx context.Context, bin, addr, dataDir string, tempDir bool, opt Options) (*Server, error) {
	args := []string{
		"-httpListenAddr=" + addr,
		"-storageDataPath=" + dataDir,
		"-loggerLevel=WARN",
		"-retentionPeriod=100y",
		"-futureRetention=100y",
		"-inmemoryDataFlushInterval=1s",
		"-insert.maxLineSizeBytes=64MiB",
	}
	args = append(args, opt.Args...)

	s := &Server{
		addr:        addr,
		url:         "http://" + addr,
		dataDir:     dataDir,
		tempDir:     tempDir,
		stopTimeout: opt.StopTimeout,
		client:      &http.Client{Transport: &http.Transport{}}, // no proxy: the server is local
		log:         &tailBuffer{max: logTailSize},
		done:        make(chan struct{}),
	}
	var out io.Writer = s.log
	if opt.Stderr != nil {
		out = io.MultiWriter(s.log, opt.Stderr)
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout = out
	s.cmd.Stderr = out
	s.cmd.SysProcAttr = sysProcAttr()
	s.cmd.WaitDelay = time.Second // do not hang on a grandchild holding the log pipe
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start victoria-logs: %w", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()

	if err := s.waitReady(ctx, opt.ReadyTimeout); err != nil {
		s.kill()
		return nil, err
	}
	return s, nil
}

// waitReady polls GET /health until it answers 200, the process exits, ctx
// ends or timeout passes.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		last = s.health(rctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-s.done:
			return &exitError{err: s.waitErr, tail: s.log.String()}
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("start victoria-logs: not ready after %s (%v); log tail:\n%s", timeout, last, s.log.String())
		case <-tick.C:
		}
	}
}

func (s *Server) health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /health: HTTP %d", resp.StatusCode)
	}
	return nil
}

// kill ends a server that never became ready.
func (s *Server) kill() {
	s.cmd.Process.Kill()
	<-s.done
	s.client.CloseIdleConnections()
}

// URL returns the server's base URL, http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.url }

// Addr returns the host:port the server listens on.
func (s *Server) Addr() string { return s.addr }

// DataDir returns the server's -storageDataPath.
func (s *Server) DataDir() string { return s.dataDir }

// Log returns the last 16 KiB of the server's log.
func (s *Server) Log() string { return s.log.String() }

// Stop sends SIGTERM, waits up to Options.StopTimeout, then sends SIGKILL,
// and removes a temporary DataDir. It returns an error if the server had
// exited on its own before Stop (a crash the caller should hear of), if it
// needed SIGKILL, or if the directory could not be removed. Calling Stop
// again returns the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	defer s.client.CloseIdleConnections()
	var errs []error
	select {
	case <-s.done:
		errs = append(errs, fmt.Errorf("stop victoria-logs: it had already exited (%v); log tail:\n%s", s.waitErr, s.log.String()))
	default:
		if err := terminate(s.cmd.Process); err != nil {
			s.cmd.Process.Kill()
		}
		t := time.NewTimer(s.stopTimeout)
		select {
		case <-s.done:
			t.Stop()
		case <-t.C:
			s.cmd.Process.Kill()
			<-s.done
			errs = append(errs, fmt.Errorf("stop victoria-logs: no exit %s after SIGTERM, killed; log tail:\n%s", s.stopTimeout, s.log.String()))
		}
	}
	if s.tempDir {
		if err := os.RemoveAll(s.dataDir); err != nil {
			errs = append(errs, fmt.Errorf("stop victoria-logs: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Available reports where the victoria-logs binary Start would run is, and
// whether it exists there as an executable file.
func Available() (string, bool) {
	bin, err := findBinary()
	if err != nil {
		return bin, false
	}
	fi, err := os.Stat(bin)
	return bin, err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// findBinary resolves the default Options.Binary. With $AUDITPIPE_VICTORIALOGS
// set, that is the answer even if the file is missing (Start then fails
// naming it), so a misconfigured override never silently falls back.
func findBinary() (string, error) {
	if b := os.Getenv(EnvBinary); b != "" {
		return b, nil
	}
	if root, err := moduleRoot(); err == nil {
		b := filepath.Join(root, ".tools", "bin", binaryName)
		if _, err := os.Stat(b); err == nil {
			return b, nil
		}
	}
	b, err := exec.LookPath(binaryName)
	if err != nil {
		return binaryName, fmt.Errorf("%s not found in $%s, <module root>/.tools/bin or PATH; run scripts/install-victorialogs.sh", binaryName, EnvBinary)
	}
	return b, nil
}

// moduleRoot walks up from the working directory to the first directory
// holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// freeAddr returns 127.0.0.1:PORT with a port the kernel just handed out.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
