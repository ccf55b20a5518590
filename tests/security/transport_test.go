package security

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/ddfake"
	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
)

type tlsFake struct {
	url   string
	der   []byte
	count func() int // records the SIEM accepted
}

func newTLSFake(t *testing.T, kind string) tlsFake {
	switch kind {
	case "splunk":
		s := hecfake.NewTLS(hecfake.Options{Tokens: []string{secret}})
		t.Cleanup(s.Close)
		return tlsFake{s.URL, s.Certificate().Raw, func() int { return len(s.Events()) }}
	case "elastic":
		s := esfake.NewTLS(esfake.Options{APIKeys: []string{secret}})
		t.Cleanup(s.Close)
		return tlsFake{s.URL, s.Certificate().Raw, func() int { return len(s.Docs()) }}
	default:
		s := ddfake.NewTLS(ddfake.Options{APIKeys: []string{secret}})
		t.Cleanup(s.Close)
		return tlsFake{s.URL, s.Certificate().Raw, func() int { return len(s.Logs()) }}
	}
}

func credFlag(kind string) string {
	if kind == "splunk" {
		return "--token"
	}
	return "--api-key"
}

// TLS is verified by default: a SIEM with a self-signed certificate is
// refused (nothing is delivered, --check fails with exit 7) until its CA
// is given with --ca-file.
func TestTLSVerifiedByDefault(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	_, recs := records(t, dir, 10)
	env := []string{"SEC_TEST_CRED=" + secret}
	for _, kind := range []string{"splunk", "elastic", "datadog"} {
		t.Run(kind, func(t *testing.T) {
			f := newTLSFake(t, kind)
			base := []string{"--kind", kind, "--url", f.url, credFlag(kind), "env:SEC_TEST_CRED", "--acks", "-", "--quiet",
				"--min-backoff", "10ms", "--max-backoff", "50ms", "--pause-after", "2", "--drain-timeout", "1s"}

			r := exe(t, env, "", 30*time.Second, "audit-ship", append(base, "--check")...)
			// A TLS failure is not the SIEM refusing our configuration:
			// exit 1 (not 7), and the fix named.
			if r.code != 1 || !strings.Contains(r.stderr, "certificate") || !strings.Contains(r.stderr, "--ca-file") {
				t.Errorf("--check against a self-signed SIEM: exit %d, want 1 with a certificate error naming --ca-file\n%s", r.code, r.stderr)
			}
			r = exeTerm(t, env, recs, 1500*time.Millisecond, "audit-ship", base...)
			if f.count() != 0 {
				t.Errorf("%d records delivered to a SIEM whose certificate is not trusted", f.count())
			}
			if r.stdout != "" {
				t.Errorf("acks for an undelivered batch: %s", r.stdout)
			}
			if !strings.Contains(r.stderr, "certificate") {
				t.Errorf("stderr does not say why:\n%s", r.stderr)
			}

			ca := filepath.Join(t.TempDir(), "ca.pem")
			writePEM(t, ca, f.der)
			r = exe(t, env, recs, time.Minute, "audit-ship", append(base, "--ca-file", ca)...)
			if r.code != 0 || f.count() != 10 {
				t.Errorf("with --ca-file: exit %d, %d records delivered, want 0 and 10\n%s", r.code, f.count(), r.stderr)
			}
		})
	}
}

// A credential is never sent over plain http to a host that is not
// loopback unless --allow-insecure-http says so: audit-ship refuses at
// start, before any connection. The binary runs in a network namespace of
// its own with no interface up, so even a regression could not send a
// packet to the (reserved, TEST-NET-1) address; it must still exit 2 with
// the refusal, not a network error.
func TestNoCredentialOverPlainHTTP(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	_, recs := records(t, dir, 5)
	for _, kind := range []string{"splunk", "elastic", "datadog"} {
		for _, check := range []bool{false, true} {
			name := kind
			if check {
				name += "/--check"
			}
			t.Run(name, func(t *testing.T) {
				args := []string{"--kind", kind, "--url", "http://192.0.2.1:8088", credFlag(kind), "env:SEC_TEST_CRED", "--acks", "-", "--timeout", "2s"}
				if check {
					args = append(args, "--check")
				}
				cmd := exec.Command(filepath.Join(bin, "audit-ship"), args...)
				cmd.Env = append(os.Environ(), "SEC_TEST_CRED="+secret)
				cmd.Stdin = strings.NewReader(recs)
				cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
				start := time.Now()
				out, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				if err != nil && !errors.As(err, &ee) {
					t.Skipf("cannot run in a network namespace of its own (%v): the refusal is not tested without one", err)
				}
				code := 0
				if ee != nil {
					code = ee.ExitCode()
				}
				if code != 2 {
					t.Errorf("exit code %d, want 2 (refused at start)\n%s", code, out)
				}
				if !strings.Contains(string(out), "refusing to send") || !strings.Contains(string(out), "plain http") {
					t.Errorf("no refusal in the output:\n%s", out)
				}
				if strings.Contains(string(out), "dial") || strings.Contains(string(out), "unreachable") {
					t.Errorf("audit-ship tried to connect:\n%s", out)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("the refusal took %v", d)
				}
				noSecret(t, "output", string(out))
			})
		}
	}
}
