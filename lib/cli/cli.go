// Package cli is the harness every auditpipe command runs in: signal handling,
// flag parsing through ff/v3 with a per-binary env prefix, and the mapping of
// errors to the shared exit codes (package exitcode).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

// RunFunc is the shape of every stage: all I/O through its arguments, so one
// test binary can run every stage in-process.
type RunFunc func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error

// Main runs run with a context cancelled by the first SIGINT or SIGTERM (the
// stage finishes what it holds, commits and exits 0); a second signal exits
// at once with exitcode.Killed. Errors are printed as "prog: err" on stderr,
// except a broken pipe, which is quiet. Main returns the exit code.
//
// The stage's stdin and stdout are an *Input and an *Output: a read blocked
// on a quiet pipe returns ErrStopped on the first signal, a write blocked on
// a downstream that does not read gives up StopGrace after it (between
// lines), and a broken pipe after the signal is part of the clean stop
// (exit 0, the stage's summary printed). Main also watches stdout: once its
// reader goes away (the next stage exited), the run is cancelled and stdin
// returns ErrOutputClosed, so the stage exits 141 at once, quietly, even while
// its input is quiet, instead of at its next write.
// signalGrace is how long a stage whose output closed waits for a stop
// signal that may be on its way to the whole process group (Ctrl-C).
const signalGrace = 200 * time.Millisecond

func Main(prog string, run RunFunc) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := &runState{}
	in := NewInput(os.Stdin)
	defer in.Close()
	out := NewOutput(os.Stdout, st)
	defer out.Close()
	// The stages that stream records set their pipes to 1 MiB on an
	// *os.File; they get an *Output now, so it is done here for every stage.
	ndjson.SetPipeSize(os.Stdout, 1<<20)

	// A write to a closed stdout returns EPIPE (then exit 141, or 0 after a
	// stop signal) instead of killing the process with SIGPIPE.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	signalled := make(chan struct{})
	go func() {
		n := 0
		for range sigs {
			n++
			if n == 1 {
				close(signalled)
				if st.set(causeSignal) {
					in.Stop(ErrStopped)
				}
				cancel()
				continue
			}
			fmt.Fprintf(os.Stderr, "%s: second signal, stopping now\n", prog)
			os.Exit(exitcode.Killed)
		}
	}()
	stopWatch := watchClosed(os.Stdout, func() {
		if st.set(causeOutputClosed) {
			in.Stop(ErrOutputClosed)
			cancel()
		}
	})
	out.unwatch = stopWatch
	if path := os.Getenv("AUDITPIPE_CPUPROFILE"); path != "" {
		// For performance work: a CPU profile of this process, one file
		// per binary (PATH.<prog>), readable with go tool pprof.
		if f, err := os.Create(path + "." + prog); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	err := run(ctx, os.Args[1:], in, out, os.Stderr)
	stopWatch()
	code := Report(prog, err, os.Stderr)
	switch st.cause.Load() {
	case causeSignal:
		if code == exitcode.Pipe {
			code = exitcode.OK // the downstream stopped first: part of the clean stop
		}
	case causeOutputClosed:
		// Ctrl-C reaches every stage of a pipeline at once, and the next
		// stage may exit on it before this one's own signal is handled:
		// a signal that follows within signalGrace makes it the same clean
		// stop (exit 0), not a downstream that went away.
		select {
		case <-signalled:
			if code == exitcode.Pipe {
				code = exitcode.OK
			}
			return code
		case <-time.After(signalGrace):
		}
		if code == exitcode.OK {
			code = exitcode.Pipe // cancelled because the downstream went away
		}
	}
	return code
}

// Stopping reports whether r (a stage's stdin from Main) was told to stop:
// by a signal (ErrStopped) or because stdout's reader went away
// (ErrOutputClosed); nil otherwise, and for any other reader.
func Stopping(r io.Reader) error {
	if in, ok := r.(*Input); ok {
		return in.stopErr()
	}
	return nil
}

// StopReading makes a read of r blocked now, and every later one, return
// err, if r is a stage's stdin from Main; it reports whether it could. A
// stage that stops reading for its own reasons (audit-ship paused) uses it
// so as not to wait for input that may never come.
func StopReading(r io.Reader, err error) bool {
	if in, ok := r.(*Input); ok {
		in.Stop(err)
		return true
	}
	return false
}

// Report prints err (unless it is quiet) and returns its exit code.
func Report(prog string, err error, stderr io.Writer) int {
	code := exitcode.Of(err)
	if err == nil || code == exitcode.Pipe || errors.Is(err, flag.ErrHelp) {
		if errors.Is(err, flag.ErrHelp) {
			return exitcode.OK
		}
		return code
	}
	if code == exitcode.OK { // cancelled: a clean stop needs no message
		return code
	}
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	return code
}

// NewFlagSet returns a flag set whose usage prints the synopsis, the flags
// with the environment variable each can be set by, and the exit-code table.
func NewFlagSet(prog, envPrefix, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags (each also settable as %s_<FLAG>, dashes as underscores):\n", strings.TrimSpace(synopsis), envPrefix)
		fs.VisitAll(func(f *flag.Flag) {
			env := envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
			def := ""
			if f.DefValue != "" && f.DefValue != "false" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(stderr, "  -%s\t%s%s [$%s]\n", f.Name, f.Usage, def, env)
		})
		fmt.Fprintf(stderr, "\n%s", exitcode.Table)
	}
	return fs
}

// Parse parses args, then the environment (PREFIX_FLAG_NAME), then an optional
// config file named by a -config flag if the flag set defines one. Usage
// errors come back wrapped with exitcode.Usage.
func Parse(fs *flag.FlagSet, args []string, envPrefix string) error {
	opts := []ff.Option{ff.WithEnvVarPrefix(envPrefix)}
	if fs.Lookup("config") != nil {
		opts = append(opts, ff.WithConfigFileFlag("config"), ff.WithConfigFileParser(ff.PlainParser))
	}
	if err := ff.Parse(fs, args, opts...); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitcode.New(exitcode.Usage, err)
	}
	return nil
}

// Usagef is a usage error (exit code 2).
func Usagef(format string, args ...any) error {
	return exitcode.Errorf(exitcode.Usage, format, args...)
}
