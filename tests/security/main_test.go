// Package security checks auditpipe's security properties through the
// built binaries, as an attacker or an auditor would see them: no
// credential in argv, output, logs, metrics or the files written; TLS
// verified by default; no credential over plain http to another host; no
// world-readable file; no routing template that escapes its index name.
package security

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

var bin string

var binaries = []string{"audit-read", "audit-verify", "audit-batch", "audit-ship", "audit-ack", "audit-append", "audit-sample"}

func TestMain(m *testing.M) {
	flag.Parse()
	// The usual umask: files are private because auditpipe makes them so,
	// not because the test runs with a strict umask.
	syscall.Umask(0o022)
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "auditpipe-security-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	args := []string{"build", "-o", dir + "/"}
	for _, b := range binaries {
		args = append(args, "./cmd/"+b)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
