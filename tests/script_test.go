// Package tests runs auditpipe's binaries as pipelines, the way users run
// them: each testdata/script/*.txtar is a testscript whose exec lines call
// the real commands (linked into this test binary) and pipe them together
// with stdin/stdout files.
package tests

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/auditpipe/auditpipe/stage/auditack"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditbatch"
	"github.com/auditpipe/auditpipe/stage/auditcheckpoint"
	"github.com/auditpipe/auditpipe/stage/auditcursor"
	"github.com/auditpipe/auditpipe/stage/auditread"
	"github.com/auditpipe/auditpipe/stage/auditsample"
	"github.com/auditpipe/auditpipe/stage/auditship"
	"github.com/auditpipe/auditpipe/stage/auditverify"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"audit-read":   func() { os.Exit(auditread.Main()) },
		"audit-verify": func() { os.Exit(auditverify.Main()) },
		"audit-append": func() { os.Exit(auditappend.Main()) },
		"audit-sample": func() { os.Exit(auditsample.Main()) },
		"audit-batch":  func() { os.Exit(auditbatch.Main()) },
		"audit-ship":   func() { os.Exit(auditship.Main()) },
		"audit-ack":    func() { os.Exit(auditack.Main()) },
		"audit-cursor": func() { os.Exit(auditcursor.Main()) },

		"audit-checkpoint": func() { os.Exit(auditcheckpoint.Main()) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":    exits,
			"chainmix": chainmix,
		},
		Setup: func(env *testscript.Env) error {
			env.Setenv("VECTORS", vectorsDir())
			wd, _ := os.Getwd()
			env.Setenv("TESTDATA", wd+"/testdata")
			return nil
		},
	})
}

// vectorsDir returns the directory holding the public golden vectors
// (docs/contract.md), committed in lib/chain/testdata.
func vectorsDir() string {
	wd, _ := os.Getwd()
	return wd + "/../lib/chain/testdata"
}

// exits N CMD ARGS... runs CMD (a binary on the script's PATH) in the work
// directory and fails unless it exits with code N: testscript's exec only
// tells success from failure, and the exit codes are part of the contract.
// Its stderr is kept in the file "exits.stderr". A last argument <FILE
// gives it FILE as stdin (testscript's stdin command applies to exec only).
func exits(ts *testscript.TestScript, neg bool, args []string) {
	var stdin string
	if n := len(args); n > 2 && strings.HasPrefix(args[n-1], "<") {
		stdin, args = strings.TrimPrefix(args[n-1], "<"), args[:n-1]
	}
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE COMMAND [ARGS...] [<FILE]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	path, err := exec.LookPath(args[1])
	if p := ts.Getenv("PATH"); p != "" {
		old := os.Getenv("PATH")
		os.Setenv("PATH", p)
		path, err = exec.LookPath(args[1])
		os.Setenv("PATH", old)
	}
	if err != nil {
		ts.Fatalf("exits: %v", err)
	}
	cmd := exec.Command(path, args[2:]...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = append(os.Environ(), "PATH="+ts.Getenv("PATH"))
	out, _ := os.Create(ts.MkAbs("exits.stderr"))
	defer out.Close()
	cmd.Stderr = out
	if stdin != "" {
		in, err := os.Open(ts.MkAbs(stdin))
		ts.Check(err)
		defer in.Close()
		cmd.Stdin = in
	}
	err = cmd.Run()
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}
