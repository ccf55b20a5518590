package security

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The distinctive secret every test hands over and then searches for.
const secret = "Zq7-SECRET-9f3b1c2d-do-not-print"

// forms are the ways the secret can show up: itself, and as it goes on
// the wire (base64, alone and in user:password).
var forms = []string{
	secret,
	base64.StdEncoding.EncodeToString([]byte(secret)),
	base64.StdEncoding.EncodeToString([]byte("auditor:" + secret)),
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binaries: skipped with -short")
	}
}

type run struct {
	stdout, stderr string
	code           int
}

// exe runs a binary with env added, stdin, and a timeout.
func exe(t *testing.T, env []string, stdin string, timeout time.Duration, name string, args ...string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := run{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if strings.Contains(r.stderr, "panic:") {
		t.Fatalf("%s panicked:\n%s", name, r.stderr)
	}
	return r
}

// noSecret fails if any form of the secret is in what.
func noSecret(t *testing.T, where, what string) {
	t.Helper()
	for _, f := range forms {
		if strings.Contains(what, f) {
			i := strings.Index(what, f)
			lo, hi := max(0, i-120), min(len(what), i+len(f)+40)
			t.Errorf("the secret is in %s: …%s…", where, what[lo:hi])
		}
	}
}

// noSecretInFiles searches every file under dir except the secret file.
func noSecretInFiles(t *testing.T, dir, secretFile string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == secretFile || d.Type()&fs.ModeNamedPipe != 0 {
			return nil
		}
		b, err := os.ReadFile(path)
		if err == nil {
			noSecret(t, "file "+filepath.Base(path), string(b))
		}
		return nil
	})
}

// records returns n record lines (and the database they are in), with
// events shaped by audit-sample, or with the given tenant ids.
func records(t *testing.T, dir string, n int, tenants ...string) (db string, lines string) {
	t.Helper()
	db = filepath.Join(dir, "audit.db")
	var events string
	if len(tenants) == 0 {
		out, err := exec.Command(filepath.Join(bin, "audit-sample"), "--count", itoa(n), "--start-ts", "0").Output()
		if err != nil {
			t.Fatal(err)
		}
		events = string(out)
	} else {
		var b strings.Builder
		for i, tn := range tenants {
			q, _ := jsonString(tn)
			b.WriteString(`{"kind":"tool_call","tenantId":` + q + `,"n":` + itoa(i) + "}\n")
		}
		events = b.String()
	}
	if r := exe(t, nil, events, time.Minute, "audit-append", "--db", db, "--quiet"); r.code != 0 {
		t.Fatalf("audit-append: %d\n%s", r.code, r.stderr)
	}
	r := exe(t, nil, "", time.Minute, "audit-read", "--db", db, "--quiet")
	if r.code != 0 {
		t.Fatalf("audit-read: %d\n%s", r.code, r.stderr)
	}
	return db, r.stdout
}

func itoa(n int) string { return strconv.Itoa(n) }

func jsonString(s string) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}

func writePEM(t *testing.T, path string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
