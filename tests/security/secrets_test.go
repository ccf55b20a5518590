package security

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/ddfake"
	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
)

// A literal secret is refused wherever a credential can be given (flag,
// environment variable, -config file, agent.yaml), with exit 2 and
// without echoing it: a command line is visible to every user (ps,
// /proc/PID/cmdline).
func TestLiteralSecretRefused(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ship.conf")
	os.WriteFile(cfg, []byte("token "+secret+"\n"), 0o600)
	agent := filepath.Join(dir, "agent.yaml")
	os.WriteFile(agent, []byte("audit:\n  export:\n    kind: splunk\n    hecUrl: http://127.0.0.1:9/services/collector/event\n    token: "+secret+"\n"), 0o600)
	splunk := []string{"--kind", "splunk", "--url", "http://127.0.0.1:9", "--acks", "-"}
	elastic := []string{"--kind", "elastic", "--url", "http://127.0.0.1:9", "--acks", "-"}
	datadog := []string{"--kind", "datadog", "--url", "http://127.0.0.1:9", "--acks", "-"}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"splunk --token", nil, append(splunk, "--token", secret)},
		{"elastic --api-key", nil, append(elastic, "--api-key", secret)},
		{"elastic --password", nil, append(elastic, "--username", "auditor", "--password", secret)},
		{"elastic --bearer", nil, append(elastic, "--bearer", secret)},
		{"datadog --api-key", nil, append(datadog, "--api-key", secret)},
		{"AUDIT_SHIP_TOKEN", []string{"AUDIT_SHIP_TOKEN=" + secret}, splunk},
		{"AUDIT_SHIP_API_KEY", []string{"AUDIT_SHIP_API_KEY=" + secret}, datadog},
		{"-config file", nil, append(splunk, "-config", cfg)},
		{"agent.yaml", nil, []string{"--agent-config", agent, "--acks", "-"}},
		{"id:key", nil, append(elastic, "--api-key", "VuaCfGcBCdbkQm-e5aOx:"+secret)},
		{"url-like", nil, append(splunk, "--token", "https://"+secret)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := exe(t, tc.env, "", 30*time.Second, "audit-ship", tc.args...)
			if r.code != 2 {
				t.Errorf("exit code %d, want 2 (usage)\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "refused") && !strings.Contains(r.stderr, "not available") {
				t.Errorf("no refusal in stderr:\n%s", r.stderr)
			}
			noSecret(t, "stderr", r.stderr)
			noSecret(t, "stdout", r.stdout)
		})
	}
}

// echo is a SIEM error answer that repeats the request's credentials, as
// some proxies' error pages do.
func echo(h http.Header) string {
	return "denied; request headers were Authorization: " + h.Get("Authorization") + " DD-API-KEY: " + h.Get("DD-API-KEY")
}

// The secret, given as env: or file:, appears nowhere audit-ship writes:
// stdout (acks), stderr (logs and errors, including a SIEM's error text
// that repeats the credential, and a poison record's reason), the
// quarantine file, the metrics textfile and /metrics, -h, --check.
func TestSecretNeverPrinted(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	_, recs := records(t, dir, 20)
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SEC_TEST_CRED=" + secret}
	poisonSeq := regexp.MustCompile(`"seq":"?(7|13)"?[,}]`)

	type siem struct {
		url  string
		args []string // the credential flags, given sec ("env:…" or "file:…")
	}
	newSIEM := map[string]func(t *testing.T, mode string, sec string) siem{
		"splunk": func(t *testing.T, mode, sec string) siem {
			s := hecfake.New(hecfake.Options{Tokens: []string{secret}, Fault: func(r *hecfake.Request) hecfake.Fault {
				switch {
				case r.Path != "/services/collector/event" && r.Path != "/services/collector/health":
				case mode == "500":
					return hecfake.Fault{Status: 500, Body: echo(r.Header)}
				case mode == "401":
					return hecfake.Fault{Status: 401, Code: 3, Text: echo(r.Header)}
				case mode == "poison" && poisonSeq.Match(r.Body):
					return hecfake.Fault{Status: 400, Code: 6, Text: "Invalid data format: " + echo(r.Header)}
				}
				return hecfake.Fault{}
			}})
			t.Cleanup(s.Close)
			return siem{s.URL, []string{"--token", sec}}
		},
		"elastic": func(t *testing.T, mode, sec string) siem {
			s := esfake.New(esfake.Options{Users: map[string]string{"auditor": secret},
				Fault: func(r *esfake.Request) esfake.Fault {
					switch mode {
					case "500":
						return esfake.Fault{Status: 500, Body: `{"error":{"type":"x","reason":"` + echo(r.Header) + `"},"status":500}`}
					case "401":
						return esfake.Fault{Status: 401, Body: `{"error":{"type":"security_exception","reason":"` + echo(r.Header) + `"},"status":401}`}
					}
					return esfake.Fault{}
				},
				Item: func(it *esfake.Item) esfake.ItemResult {
					if mode == "poison" && poisonSeq.Match(it.Doc) {
						return esfake.ItemResult{Status: 400, Type: "mapper_parsing_exception", Reason: "failed to parse for principal " + it.Principal + " " + secret}
					}
					return esfake.ItemResult{}
				}})
			t.Cleanup(s.Close)
			return siem{s.URL, []string{"--username", "auditor", "--password", sec}}
		},
		"datadog": func(t *testing.T, mode, sec string) siem {
			s := ddfake.New(ddfake.Options{APIKeys: []string{secret}, Fault: func(r *ddfake.Request) ddfake.Fault {
				switch {
				case mode == "500":
					return ddfake.Fault{Status: 500, Body: `{"errors":["` + echo(r.Header) + `"]}`}
				case mode == "401":
					return ddfake.Fault{Status: 403, Body: `{"errors":["` + echo(r.Header) + `"]}`}
				case mode == "poison" && poisonSeq.Match(r.Body):
					return ddfake.Fault{Status: 400, Body: `{"errors":["bad log: ` + echo(r.Header) + `"]}`}
				}
				return ddfake.Fault{}
			}})
			t.Cleanup(s.Close)
			return siem{s.URL, []string{"--api-key", sec}}
		},
	}

	for _, kind := range []string{"splunk", "elastic", "datadog"} {
		for _, mode := range []string{"ok", "500", "401", "poison", "check"} {
			for _, ref := range []string{"env:SEC_TEST_CRED", "file:" + secretFile} {
				name := kind + "/" + mode + "/" + strings.SplitN(ref, ":", 2)[0]
				t.Run(name, func(t *testing.T) {
					out := t.TempDir()
					fakeMode := mode
					if mode == "check" {
						fakeMode = "401"
					}
					s := newSIEM[kind](t, fakeMode, ref)
					args := append([]string{"--kind", kind, "--url", s.url, "--exporter", kind + ":sec",
						"--acks", "-", "--quarantine", filepath.Join(out, "q.ndjson"),
						"--metrics-file", filepath.Join(out, "ship.prom"),
						"--min-backoff", "10ms", "--max-backoff", "50ms", "--refused-backoff", "10ms", "--pause-after", "3", "--drain-timeout", "1s"}, s.args...)
					if mode == "check" {
						args = append(args, "--check")
					}
					var r run
					if mode == "500" {
						// Retried until stopped: SIGTERM after a few tries.
						r = exeTerm(t, env, recs, 800*time.Millisecond, "audit-ship", args...)
					} else {
						r = exe(t, env, recs, time.Minute, "audit-ship", args...)
					}
					want := map[string]int{"ok": 0, "500": 0, "401": 7, "poison": 0, "check": 7}[mode]
					if r.code != want {
						t.Errorf("exit code %d, want %d\n%s", r.code, want, r.stderr)
					}
					if mode != "ok" && len(r.stderr) < 20 {
						t.Errorf("expected an error on stderr, got %q", r.stderr)
					}
					if mode == "poison" {
						q, _ := os.ReadFile(filepath.Join(out, "q.ndjson"))
						if !strings.Contains(string(q), `"seq":7`) {
							t.Errorf("the poison record was not quarantined:\n%s\n%s", q, r.stderr)
						}
					}
					// The SIEM did repeat the credential, and it was masked.
					shown := r.stderr
					if mode == "poison" {
						q, _ := os.ReadFile(filepath.Join(out, "q.ndjson"))
						shown = string(q)
					}
					// (Splunk's health check carries no token to repeat.)
					if mode != "ok" && !(kind == "splunk" && mode == "check") && !strings.Contains(shown, "[token]") && !strings.Contains(shown, "[secret]") {
						t.Errorf("no masked credential where the SIEM's echo should be:\n%s", shown)
					}
					noSecret(t, "stderr", r.stderr)
					noSecret(t, "stdout", r.stdout)
					noSecretInFiles(t, out, "")
				})
			}
		}
	}

	t.Run("-h", func(t *testing.T) {
		r := exe(t, append(env, "AUDIT_SHIP_TOKEN=env:SEC_TEST_CRED"), "", 10*time.Second, "audit-ship", "-h")
		noSecret(t, "-h", r.stdout+r.stderr)
	})

	// An exec: command that fails after printing the secret (on stdout,
	// then quoting it on stderr): the error names the command, not what
	// it printed.
	t.Run("exec failing", func(t *testing.T) {
		script := filepath.Join(dir, "fetch-token")
		os.WriteFile(script, []byte("#!/bin/sh\necho "+secret+"\necho \"vault: token "+secret+" expired\" >&2\nexit 3\n"), 0o700)
		r := exe(t, nil, recs, 30*time.Second, "audit-ship", "--kind", "splunk", "--url", "http://127.0.0.1:9", "--acks", "-", "--token", "exec:"+script)
		if r.code != 2 {
			t.Errorf("exit code %d, want 2\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "fetch-token") {
			t.Errorf("the error does not name the command:\n%s", r.stderr)
		}
		noSecret(t, "stderr", r.stderr)
	})

	// /metrics over HTTP while audit-ship runs.
	t.Run("metrics-listen", func(t *testing.T) {
		s := newSIEM["splunk"](t, "ok", "env:SEC_TEST_CRED")
		cmd := exec.Command(filepath.Join(bin, "audit-ship"), "--kind", "splunk", "--url", s.url, "--token", "env:SEC_TEST_CRED",
			"--acks", "-", "--metrics-listen", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), env...)
		stdin, _ := cmd.StdinPipe()
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		io.WriteString(stdin, recs)
		sc := bufio.NewScanner(stderr)
		var url string
		var logged strings.Builder
		for sc.Scan() {
			logged.WriteString(sc.Text() + "\n")
			if m := regexp.MustCompile(`metrics at (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				url = m[1]
				break
			}
		}
		if url == "" {
			t.Fatalf("no metrics address on stderr:\n%s", logged.String())
		}
		time.Sleep(300 * time.Millisecond)
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "auditpipe_") {
			t.Errorf("/metrics has no auditpipe series:\n%.500s", body)
		}
		noSecret(t, "/metrics", string(body))
		stdin.Close()
		rest, _ := io.ReadAll(stderr)
		cmd.Wait()
		noSecret(t, "stderr", logged.String()+string(rest))
	})
}

// exeTerm runs a binary and sends it SIGTERM after d.
func exeTerm(t *testing.T, env []string, stdin string, d time.Duration, name string, args ...string) run {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(d, func() { cmd.Process.Signal(syscall.SIGTERM) })
	defer timer.Stop()
	kill := time.AfterFunc(d+60*time.Second, func() { cmd.Process.Kill() })
	defer kill.Stop()
	err := cmd.Wait()
	r := run{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	}
	return r
}
