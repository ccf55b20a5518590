package cli

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

func testFlagSet(stderr *bytes.Buffer) *flag.FlagSet {
	fs := NewFlagSet("audit-ship", "AUDIT_SHIP", "usage: audit-ship [flags]", stderr)
	fs.Int("inflight", 4, "requests in flight")
	fs.String("kind", "", "SIEM kind")
	fs.String("ca-file", "", "CA bundle")
	fs.Bool("quiet", false, "no summary")
	fs.String("config", "", "config file")
	return fs
}

// TestParseMistakes: every mistake is one line naming the fix, exit 2;
// nothing of the 80-line usage is printed.
func TestParseMistakes(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ship.conf")
	os.WriteFile(cfg, []byte("# comment\nkind splunk\n\ninflihgt 8\n"), 0o600)
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("kind splunk\ninflight eight\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"mistyped flag", []string{"--inflihgt", "8"}, nil,
			[]string{"unknown flag --inflihgt", "did you mean --inflight?", "audit-ship -h"}},
		{"mistyped single dash", []string{"-cafile", "x"}, nil,
			[]string{"unknown flag -cafile", "did you mean --ca-file?"}},
		{"far from any flag", []string{"--zzzzzzzz"}, nil,
			[]string{"unknown flag --zzzzzzzz", "audit-ship -h"}},
		{"bad value", []string{"--inflight", "x"}, nil,
			[]string{`invalid value "x" for flag -inflight`, "audit-ship -h"}},
		{"missing value", []string{"--kind"}, nil,
			[]string{"flag needs an argument: -kind"}},
		{"unknown env", nil, []string{"AUDIT_SHIP_INFLIHGT=8"},
			[]string{"AUDIT_SHIP_INFLIHGT matches no flag of audit-ship", "did you mean AUDIT_SHIP_INFLIGHT?"}},
		{"unknown env far from any flag", nil, []string{"AUDIT_SHIP_BOGUS=8"},
			[]string{"AUDIT_SHIP_BOGUS matches no flag of audit-ship: unset it"}},
		{"bad env value", nil, []string{"AUDIT_SHIP_INFLIGHT=x"},
			[]string{"AUDIT_SHIP_INFLIGHT", `"x"`}},
		{"config unknown name", []string{"-config", cfg}, nil,
			[]string{cfg + ":4:", "inflihgt", "did you mean inflight?"}},
		{"config bad value", []string{"-config", bad}, nil,
			[]string{bad + ":2:", "inflight", `"eight"`}},
		{"config missing", []string{"-config", filepath.Join(dir, "nope")}, nil,
			[]string{"-config", "nope", "no such file"}},
		{"config from the environment", nil, []string{"AUDIT_SHIP_CONFIG=" + cfg},
			[]string{cfg + ":4:", "did you mean inflight?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, kv := range tc.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			fs := testFlagSet(&stderr)
			err := Parse(fs, tc.args, "AUDIT_SHIP")
			if err == nil {
				t.Fatal("no error")
			}
			if exitcode.Of(err) != exitcode.Usage {
				t.Errorf("exit %d, want 2", exitcode.Of(err))
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is more than one line: %q", msg)
			}
			if stderr.Len() != 0 {
				t.Errorf("printed on stderr (the usage?): %q", stderr.String())
			}
		})
	}
}

// TestParseHelp: -h still prints the whole usage and returns ErrHelp; a
// known environment variable and a good config file still work.
func TestParseHelp(t *testing.T) {
	var stderr bytes.Buffer
	fs := testFlagSet(&stderr)
	if err := Parse(fs, []string{"-h"}, "AUDIT_SHIP"); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	if !strings.Contains(stderr.String(), "-inflight") || !strings.Contains(stderr.String(), "AUDIT_SHIP_INFLIGHT") {
		t.Errorf("usage: %q", stderr.String())
	}

	t.Setenv("AUDIT_SHIP_INFLIGHT", "9")
	t.Setenv("AUDIT_SHIPPING", "x") // another prefix: not ours
	cfg := filepath.Join(t.TempDir(), "c")
	os.WriteFile(cfg, []byte("kind elastic # the cluster\nquiet\nAUDIT_SHIP_CA_FILE /ca.pem\n"), 0o600)
	stderr.Reset()
	fs = testFlagSet(&stderr)
	if err := Parse(fs, []string{"-config", cfg}, "AUDIT_SHIP"); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"inflight": "9", "kind": "elastic", "quiet": "true", "ca-file": "/ca.pem"} {
		if got := fs.Lookup(name).Value.String(); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

// TestParseEnvExtra: a binary with commands declares the variables of its
// other commands' flags, which are not mistakes.
func TestParseEnvExtra(t *testing.T) {
	t.Setenv("AUDIT_SHIP_TO_SEQ", "3")
	var stderr bytes.Buffer
	fs := testFlagSet(&stderr)
	KnownEnv(fs, "to-seq")
	if err := Parse(fs, nil, "AUDIT_SHIP"); err != nil {
		t.Fatal(err)
	}
}

// listFlag is a repeatable flag: each Set appends.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// A repeatable flag gets each value given once, positional arguments
// (even one that looks like a flag, after --) are kept, and the
// environment still fills a flag the command line did not give.
func TestParseRepeatableOnce(t *testing.T) {
	t.Setenv("AUDITPIPE_TEST_NAME", "from-env")
	fs := flag.NewFlagSet("audit-test", flag.ContinueOnError)
	var l listFlag
	fs.Var(&l, "witness", "repeatable")
	name := fs.String("name", "", "")
	if err := Parse(fs, []string{"--witness", "a", "--witness", "b", "file1", "--", "-file2"}, "AUDITPIPE_TEST"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(l, ","); got != "a,b" {
		t.Errorf("--witness a --witness b gave %q, want a,b", got)
	}
	if got := strings.Join(fs.Args(), " "); got != "file1 -- -file2" && got != "file1 -file2" {
		t.Errorf("positional arguments %q", got)
	}
	if *name != "from-env" {
		t.Errorf("--name from the environment: %q", *name)
	}
}
