// Package cli is the harness every auditpipe command runs in: signal handling,
// flag parsing through ff/v3 with a per-binary env prefix, and the mapping of
// errors to the shared exit codes (package exitcode).
package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
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
// earlySigs takes SIGINT and SIGTERM from package initialisation on, in an
// auditpipe binary (audit-*), so that a stop signal sent in the first
// milliseconds of a process (a restart right after a start) is held for Main
// instead of killing it by the signal's default action (exit 143, nothing
// said). Only the Go runtime's own start-up comes before it. Test binaries
// keep the default, so that Ctrl-C still stops go test.
var earlySigs chan os.Signal

func init() {
	if strings.HasPrefix(filepath.Base(os.Args[0]), "audit-") {
		earlySigs = make(chan os.Signal, 2)
		signal.Notify(earlySigs, syscall.SIGINT, syscall.SIGTERM)
	}
}

// stopCause turns an error that is only the run's cancellation (whatever
// code a stage wrapped around it: a database open cut short is not a
// database failure) into what cancelled it: nil for a stop signal, the
// quiet exit 141 for a closed output.
func stopCause(err error, cause int32) error {
	if err == nil || !errors.Is(err, context.Canceled) {
		return err
	}
	switch cause {
	case causeSignal:
		return nil
	case causeOutputClosed:
		return exitcode.New(exitcode.Pipe, err)
	}
	return err
}

// signalGrace is how long a stage whose output closed waits for a stop
// signal that may be on its way to the whole process group (Ctrl-C).
const signalGrace = 200 * time.Millisecond

func Main(prog string, run RunFunc) int {
	return MainProcs(prog, 0, run)
}

// MainProcs is Main that first limits the process to procs Ps
// (runtime.GOMAXPROCS) when procs > 0 and the environment sets no
// GOMAXPROCS of its own. The streaming stages run with 1: in a pipeline of
// five Go processes sharing the host's cores, a second P each bought no
// throughput on a 2-core host and cost about 10% more CPU per record (idle
// threads woken, and spinning for work, at every hand-off between
// goroutines; measured with scripts/bench-ab.sh, docs/perf.md). GOMAXPROCS=N in the environment
// gives a stage N Ps back, e.g. audit-ship on a host with idle cores
// whose compression is the bottleneck.
func MainProcs(prog string, procs int, run RunFunc) int {
	if procs > 0 && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(procs)
	}
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
	sigs := earlySigs
	if sigs == nil {
		sigs = make(chan os.Signal, 2)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	}
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
	err = stopCause(err, st.cause.Load())
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
// errors come back wrapped with exitcode.Usage, as one line that names the
// fix: a mistyped flag gets a did-you-mean and a pointer to -h (the full
// usage is printed for -h only); an environment variable with the prefix
// that matches no flag is an error too (with did-you-mean), not silence;
// a config file error names the file and line.
func Parse(fs *flag.FlagSet, args []string, envPrefix string) error {
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if err := checkEnv(fs, envPrefix); err != nil {
		return err
	}
	opts := []ff.Option{ff.WithEnvVarPrefix(envPrefix)}
	if fs.Lookup("config") != nil {
		opts = append(opts, ff.WithConfigFileFlag("config"), ff.WithConfigFileParser(configParser(fs, envPrefix)))
	}
	// The command line is parsed already. ff must not parse it again (a
	// repeatable flag would get each value twice): it is given only the
	// positional arguments, behind "--", and sets the flags not given
	// (fs.Visit still knows those that were) from the environment and the
	// config file.
	rest := append([]string{"--"}, fs.Args()...)
	if err := ff.Parse(fs, rest, opts...); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("-config %s: %w", pe.Path, pe.Err)
		} else if m := envErr.FindStringSubmatch(err.Error()); m != nil {
			err = fmt.Errorf("environment variable %s=%q: %s%s", m[1], os.Getenv(m[1]), m[2], hint(fs))
		}
		return exitcode.New(exitcode.Usage, err)
	}
	return nil
}

// envErr is ff's message for a bad value in an environment variable.
var envErr = regexp.MustCompile(`from environment variable "([^"]+)": (.*)$`)

// knownEnv holds, per flag set, names of flags of the binary's other
// commands: their environment variables are not mistakes.
var (
	knownEnvMu sync.Mutex
	knownEnv   = map[*flag.FlagSet][]string{}
)

// KnownEnv declares flags of the same binary's other commands (which share
// the environment prefix), so that their variables are not reported as
// matching no flag. Call it before Parse.
func KnownEnv(fs *flag.FlagSet, flagNames ...string) {
	knownEnvMu.Lock()
	defer knownEnvMu.Unlock()
	knownEnv[fs] = append(knownEnv[fs], flagNames...)
}

func envName(prefix, flagName string) string {
	return prefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_", "/", "_").Replace(flagName))
}

func hint(fs *flag.FlagSet) string {
	return fmt.Sprintf(" (%s -h lists the flags)", fs.Name())
}

// parseArgs parses the command line with the flag package's own messages
// and usage silenced: -h prints the usage, a mistake is one line.
func parseArgs(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		dashes := "-"
		for _, a := range args {
			if strings.HasPrefix(a, "--"+name) {
				dashes = "--"
				break
			}
		}
		msg = "unknown flag " + dashes + name
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if s := suggest(name, names); s != "" {
			msg += ": did you mean --" + s + "?"
		}
	}
	return exitcode.New(exitcode.Usage, errors.New(msg+hint(fs)))
}

// checkEnv refuses a PREFIX_* environment variable that sets no flag.
func checkEnv(fs *flag.FlagSet, prefix string) error {
	knownEnvMu.Lock()
	extra := knownEnv[fs]
	delete(knownEnv, fs)
	knownEnvMu.Unlock()
	known := map[string]bool{}
	var names []string
	add := func(name string) {
		e := envName(prefix, name)
		known[e] = true
		names = append(names, e)
	}
	fs.VisitAll(func(f *flag.Flag) { add(f.Name) })
	for _, n := range extra {
		add(n)
	}
	var bad []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		// An empty value sets nothing (as for a flag's variable).
		if v != "" && strings.HasPrefix(k, prefix+"_") && !known[k] {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	msg := fmt.Sprintf("environment variable %s matches no flag of %s", bad[0], fs.Name())
	// Compared without the common PREFIX_, which would otherwise make any
	// two names look alike (AUDIT_ACK_MAX_LINE is not AUDIT_ACK_KIND).
	p := prefix + "_"
	short := make([]string, len(names))
	for i, n := range names {
		short[i] = strings.TrimPrefix(n, p)
	}
	if s := suggest(strings.TrimPrefix(bad[0], p), short); s != "" {
		msg += ": did you mean " + p + s + "?"
	} else {
		msg += ": unset it"
	}
	return exitcode.New(exitcode.Usage, errors.New(msg+hint(fs)))
}

// configParser is ff's plain format (NAME VALUE per line, # comments, a
// bare NAME is a boolean) with every error naming FILE:LINE.
func configParser(fs *flag.FlagSet, prefix string) ff.ConfigFileParser {
	return func(r io.Reader, set func(name, value string) error) error {
		file := fs.Lookup("config").Value.String() // set by now, also from the environment
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		s := bufio.NewScanner(r)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		n := 0
		for s.Scan() {
			n++
			line := strings.TrimSpace(s.Text())
			if line == "" || line[0] == '#' {
				continue
			}
			name, value, ok := strings.Cut(line, " ")
			if !ok {
				name, value = line, "true"
			}
			value = strings.TrimSpace(value)
			if i := strings.Index(value, " #"); i >= 0 {
				value = strings.TrimSpace(value[:i])
			}
			name = strings.TrimLeft(name, "-")
			lookup := name
			if fs.Lookup(name) == nil {
				fs.VisitAll(func(f *flag.Flag) {
					if envName(prefix, f.Name) == name {
						lookup = f.Name
					}
				})
			}
			if fs.Lookup(lookup) == nil {
				msg := fmt.Sprintf("%s:%d: %q is not a flag of %s", file, n, name, fs.Name())
				if sg := suggest(name, names); sg != "" {
					msg += ": did you mean " + sg + "?"
				}
				return errors.New(msg + hint(fs))
			}
			if err := set(lookup, value); err != nil {
				return fmt.Errorf("%s:%d: %s %q: %v", file, n, lookup, value, unwrapAll(err))
			}
		}
		if err := s.Err(); err != nil {
			return fmt.Errorf("%s:%d: %w", file, n+1, err)
		}
		return nil
	}
}

func unwrapAll(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// suggest returns the candidate closest to s (case-insensitive edit
// distance, a transposition counting one), or "" if none is close enough.
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := distance(ls, strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(2, len(s)/3)
	if bestD > limit {
		return ""
	}
	return best
}

// distance is the optimal string alignment distance.
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// Usagef is a usage error (exit code 2).
func Usagef(format string, args ...any) error {
	return exitcode.Errorf(exitcode.Usage, format, args...)
}

// Count is n and the noun, singular for 1: "1 record", "0 records",
// "2 batches". many is the plural ("" adds an s).
func Count(n int64, one, many string) string {
	if many == "" {
		many = one + "s"
	}
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
