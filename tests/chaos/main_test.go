// Package chaos runs the whole auditpipe pipeline as real processes, in
// follow mode with a live appender, into the fake SIEMs of lib/sink
// (Splunk HEC, Elasticsearch, Datadog) behind a toxiproxy, and injects
// faults for a while: network faults between audit-ship and the SIEM,
// SIEM error answers through the fakes' hooks, kill -9 and SIGTERM of
// every stage and of audit-ack, the ack FIFO without a reader, a restart
// in the middle of a batch, and storage faults on the cursor database
// (a full filesystem, a read-only database file, a long exclusive lock).
//
// It asserts invariants only: nothing written is lost (every seq reached
// the SIEM or the quarantine file), the committed cursor never passed a
// record the SIEM did not hold, every exit code is one the binary
// documents, no process panicked, and what the SIEM holds is the chain,
// byte for byte. It ends with a table of what it did.
//
// TestChaosOps (ops_test.go) is its second part: the operational faults
// (restarts while acks commit, faults while the log is quiet, SIGTERM to
// single stages, the database or the ack FIFO replaced, overlapping runs),
// counting false findings, lost records, duplicates, stalls and the time
// each stage takes to exit after a closed output or a first SIGTERM.
//
// go test -short skips it. The default run (part of go test ./...) is
// short; CHAOS_DURATION (e.g. 150s, per SIEM) makes a longer one, as
// scripts/chaos.sh does. CHAOS_SEED picks the seed; CHAOS_REPORT names a
// file for the table.
package chaos

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
)

// bin is the directory holding the freshly built binaries.
var bin string

// binaries are the commands the suite runs.
var binaries = []string{"audit-read", "audit-verify", "audit-batch", "audit-ship", "audit-ack", "audit-append", "audit-sample"}

func TestMain(m *testing.M) {
	flag.Parse()
	zerolog.SetGlobalLevel(zerolog.Disabled) // toxiproxy's own tracing
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "auditpipe-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	root, err := filepath.Abs("../..")
	if err == nil {
		args := []string{"build", "-o", dir + "/"}
		for _, b := range binaries {
			args = append(args, "./cmd/"+b)
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		var out []byte
		if out, err = cmd.CombinedOutput(); err != nil {
			err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
