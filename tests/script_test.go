// Package tests runs auditpipe's binaries as pipelines, the way users run
// them: each testdata/script/*.txtar is a testscript whose exec lines call
// the real commands (linked into this test binary) and pipe them together
// with stdin/stdout files.
package tests

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/auditpipe/auditpipe/stage/auditack"
	"github.com/auditpipe/auditpipe/stage/auditappend"
	"github.com/auditpipe/auditpipe/stage/auditbatch"
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
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("VECTORS", sharedOrCopy())
			return nil
		},
	})
}

// sharedOrCopy returns the directory holding the public golden vectors:
// the committed copy in lib/chain/testdata.
func sharedOrCopy() string {
	wd, _ := os.Getwd()
	return wd + "/../lib/chain/testdata"
}
