package ops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/metricstest"
)

// build compiles the binaries into dir.
func build(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/...")
	cmd.Dir = root(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuf
	done   chan error
}

// start runs a process; the test's cleanup kills it if it is still there.
func start(t *testing.T, stdin io.Reader, stdout io.Writer, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(name), cmd: exec.Command(name, args...), stderr: &syncBuf{}, done: make(chan error, 1)}
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = stdin, stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(syscall.SIGKILL, time.Second) })
	return p
}

// stop sends sig and waits up to d for the exit, then kills.
func (p *proc) stop(sig syscall.Signal, d time.Duration) error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(d):
		p.cmd.Process.Kill()
		return fmt.Errorf("%s did not stop within %v", p.name, d)
	}
}

// metricsURL waits for the stage's "metrics at" line.
func (p *proc) metricsAddr(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if a := metricstest.Addr(p.stderr.String()); a != "" {
			return a
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s printed no metrics address:\n%s", p.name, p.stderr.String())
	return ""
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// promAPI is a client of Prometheus' HTTP API.
type promAPI struct{ base string }

func (p promAPI) get(path string, v any) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(p.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	if env.Status != "success" {
		return fmt.Errorf("GET %s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, v)
}

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) float() float64 {
	f, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
	return f
}

// query runs an instant query and returns its vector (a scalar result is
// returned as one sample without labels).
func (p promAPI) query(q string) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var v []sample
		return v, json.Unmarshal(data.Result, &v)
	case "scalar":
		var s [2]any
		err := json.Unmarshal(data.Result, &s)
		return []sample{{Value: s}}, err
	}
	return nil, fmt.Errorf("query %q: result type %s", q, data.ResultType)
}

type rule struct {
	Name      string `json:"name"`
	Query     string `json:"query"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
	State     string `json:"state"`
	Alerts    []struct {
		Labels map[string]string `json:"labels"`
		State  string            `json:"state"`
		Value  string            `json:"value"`
	} `json:"alerts"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

func (p promAPI) rules() ([]rule, error) {
	var data struct {
		Groups []struct {
			Rules []rule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get("/api/v1/rules", &data); err != nil {
		return nil, err
	}
	var out []rule
	for _, g := range data.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// waitFor polls cond every 100ms until it returns "" or the time is up,
// and fails with its last complaint.
func waitFor(t *testing.T, d time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A real Prometheus scrapes a running pipeline's --metrics-listen
// endpoints with examples/prometheus/alerts.yml loaded: every rule
// evaluates without error on real data, the export-lag alert goes pending
// while audit-ack reports a cursor 12k behind and clears when the pipeline
// catches up, the contract metrics are there with their exporter and
// vendor labels, and every dashboard query runs.
func TestPrometheusScrapesPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	prometheus := requireTool(t, "prometheus")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build(t, bin)
	const exporter = "file:ops"
	const n = 12000
	db := filepath.Join(dir, "audit.db")
	fifo := filepath.Join(dir, "acks.fifo")

	// The log, before anything ships: 12000 records, cursor at 0.
	gen := exec.Command(filepath.Join(bin, "audit-sample"), "--count", strconv.Itoa(n), "--size", "300")
	app := exec.Command(filepath.Join(bin, "audit-append"), "--db", db, "--quiet")
	pipe, _ := gen.StdoutPipe()
	app.Stdin = pipe
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	if err := gen.Run(); err != nil {
		t.Fatal(err)
	}
	if err := app.Wait(); err != nil {
		t.Fatal(err)
	}

	// audit-ack first: it reports head 12000, cursor 0.
	ack := start(t, nil, nil, filepath.Join(bin, "audit-ack"), "--fifo", fifo, "--db", db, "--exporter", exporter,
		"--commit-interval", "50ms", "--metrics-listen", "127.0.0.1:0", "--quiet")
	targets := map[string]string{"audit-ack": ack.metricsAddr(t)}

	// Prometheus, scraping every second and evaluating every second.
	promAddr := freePort(t)
	cfg := filepath.Join(dir, "prometheus.yml")
	rules := filepath.Join(root(t), "examples", "prometheus", "alerts.yml")
	writeConfig := func() {
		var b strings.Builder
		fmt.Fprintf(&b, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n  - %s\nscrape_configs:\n  - job_name: auditpipe\n    static_configs:\n", rules)
		for _, name := range []string{"audit-read", "audit-verify", "audit-batch", "audit-ship", "audit-ack"} {
			if a, ok := targets[name]; ok {
				fmt.Fprintf(&b, "      - targets: ['%s']\n        labels: {binary: %s}\n", a, name)
			}
		}
		if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig()
	prom := start(t, nil, nil, prometheus, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--web.enable-lifecycle", "--log.level=warn")
	api := promAPI{base: "http://" + promAddr}
	waitFor(t, 30*time.Second, func() string {
		resp, err := http.Get(api.base + "/-/ready")
		if err != nil {
			return fmt.Sprintf("prometheus not ready: %v\n%s", err, prom.stderr.String())
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return "prometheus not ready: " + resp.Status
		}
		return ""
	})

	// The lag alert's expression is true on real data: it goes pending.
	waitFor(t, 30*time.Second, func() string {
		rs, err := api.rules()
		if err != nil {
			return err.Error()
		}
		for _, r := range rs {
			if r.Name == "AuditExportLag" {
				for _, a := range r.Alerts {
					if a.State == "pending" && a.Labels["exporter"] == exporter && a.Labels["vendor"] == "file" {
						t.Logf("AuditExportLag pending, value %s", a.Value)
						return ""
					}
				}
				return fmt.Sprintf("AuditExportLag is %s (%s), alerts %v", r.State, r.LastError, r.Alerts)
			}
		}
		return "no AuditExportLag rule loaded"
	})

	// Now the pipeline: read --follow | verify | batch | ship to a file,
	// acks to the acker; every stage serves its metrics.
	stages := []struct {
		name string
		args []string
	}{
		{"audit-read", []string{"--db", db, "--from-cursor", exporter, "--follow", "--quiet", "--metrics-listen", "127.0.0.1:0"}},
		{"audit-verify", []string{"--db", db, "--from-cursor", exporter, "--quiet", "--metrics-listen", "127.0.0.1:0"}},
		{"audit-batch", []string{"--siem", "file", "--max-count", "500", "--quiet", "--metrics-listen", "127.0.0.1:0", "--metrics-exporter", exporter}},
		{"audit-ship", []string{"--kind", "file", "--path", filepath.Join(dir, "shipped.ndjson"), "--exporter", exporter, "--acks", fifo, "--quiet",
			"--metrics-listen", "127.0.0.1:0"}},
	}
	var procs []*proc
	var in io.Reader
	for i, s := range stages {
		var out io.Writer
		var r, w *os.File
		if i < len(stages)-1 {
			var err error
			if r, w, err = os.Pipe(); err != nil {
				t.Fatal(err)
			}
			out = w
		}
		p := start(t, in, out, filepath.Join(bin, s.name), s.args...)
		if w != nil {
			w.Close()
		}
		if f, ok := in.(*os.File); ok {
			f.Close()
		}
		in = r
		procs = append(procs, p)
		targets[s.name] = p.metricsAddr(t)
	}
	writeConfig()
	if resp, err := http.Post(api.base+"/-/reload", "", nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("reload prometheus: %v %v", err, resp)
	}

	// Every target is up.
	waitFor(t, 30*time.Second, func() string {
		v, err := api.query(`up{job="auditpipe"}`)
		if err != nil {
			return err.Error()
		}
		up := map[string]float64{}
		for _, s := range v {
			up[s.Metric["binary"]] = s.float()
		}
		for name := range targets {
			if up[name] != 1 {
				return fmt.Sprintf("targets up: %v, want all of %v", up, targets)
			}
		}
		return ""
	})

	// The pipeline drains: the cursor reaches the head, the lag is 0 and
	// the alert is no longer pending.
	waitFor(t, 60*time.Second, func() string {
		v, err := api.query(`auditpipe_export_lag_records{exporter="file:ops",vendor="file",binary="audit-ack"}`)
		if err != nil {
			return err.Error()
		}
		if len(v) != 1 || v[0].float() != 0 {
			return fmt.Sprintf("lag %v", v)
		}
		rs, err := api.rules()
		if err != nil {
			return err.Error()
		}
		for _, r := range rs {
			if r.Name == "AuditExportLag" && len(r.Alerts) > 0 {
				return fmt.Sprintf("AuditExportLag still %v", r.Alerts)
			}
		}
		return ""
	})

	// The contract metrics, from the stage that owns each, with their labels.
	type want struct {
		query, binary string
		value         float64 // -1: any value
	}
	wants := []want{
		{`declaragent_audit_backpressure_paused_total`, "audit-read", -1},
		{`declaragent_audit_backpressure_paused_total`, "audit-verify", -1},
		{`declaragent_audit_backpressure_paused_total`, "audit-batch", -1},
		{`declaragent_audit_batch_interval_ms`, "audit-batch", -1},
		{`auditpipe_batch_max_interval_ms`, "audit-batch", 5000},
		{`declaragent_audit_last_seq`, "audit-read", n},
		{`declaragent_audit_last_seq`, "audit-ack", n},
		{`declaragent_audit_export_last_seq`, "audit-ack", n},
		{`auditpipe_export_lag_records`, "audit-ack", 0},
		{`auditpipe_records_out_total`, "audit-read", n},
		{`auditpipe_records_out_total`, "audit-verify", n},
		{`auditpipe_records_out_total`, "audit-batch", n},
		{`auditpipe_stage_last_seq`, "audit-verify", n},
		{`auditpipe_records_in_total`, "audit-ack", n},
		{`auditpipe_verify_breaks_total{reason="prev_link"}`, "audit-verify", 0},
		{`auditpipe_verify_breaks_total{reason="hash_mismatch"}`, "audit-verify", 0},
	}
	wants = append(wants,
		want{`declaragent_audit_export_failures_total{retryable="false"}`, "audit-ship", 0},
		want{`declaragent_audit_export_failures_total{retryable="true"}`, "audit-ship", 0},
		want{`declaragent_audit_export_acked_total`, "audit-ship", n},
		want{`declaragent_audit_export_paused`, "audit-ship", 0},
		want{`auditpipe_ship_last_acked_seq`, "audit-ship", n})
	for _, w := range wants {
		q := w.query
		if strings.Contains(q, "{") {
			q = strings.Replace(q, "{", `{binary="`+w.binary+`",`, 1)
		} else {
			q += `{binary="` + w.binary + `"}`
		}
		waitFor(t, 10*time.Second, func() string {
			v, err := api.query(q)
			if err != nil {
				return err.Error()
			}
			if len(v) != 1 {
				return fmt.Sprintf("%s: %d series, want 1: %v", q, len(v), v)
			}
			m := v[0].Metric
			if m["exporter"] != exporter || m["vendor"] != "file" || m["job"] != "auditpipe" || m["instance"] != targets[w.binary] {
				return fmt.Sprintf("%s: labels %v, want exporter=%s vendor=file job=auditpipe instance=%s", q, m, exporter, targets[w.binary])
			}
			if w.value >= 0 && v[0].float() != w.value {
				return fmt.Sprintf("%s = %v, want %v", q, v[0].float(), w.value)
			}
			return ""
		})
	}

	// Every rule has been evaluated without error, and its expression runs
	// as a query on this data.
	ruleText, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	wantRules := len(regexp.MustCompile(`(?m)^\s*- alert:`).FindAll(ruleText, -1))
	waitFor(t, 10*time.Second, func() string {
		rs, err := api.rules()
		if err != nil {
			return err.Error()
		}
		if len(rs) != wantRules {
			return fmt.Sprintf("%d rules loaded, want the %d of %s", len(rs), wantRules, rules)
		}
		for _, r := range rs {
			if r.Health != "ok" || r.LastEvaluation.IsZero() {
				return fmt.Sprintf("rule %s: health %q, last error %q, evaluated %v", r.Name, r.Health, r.LastError, r.LastEvaluation)
			}
		}
		return ""
	})
	rs, _ := api.rules()
	for _, r := range rs {
		v, err := api.query(r.Query)
		if err != nil {
			t.Errorf("rule %s: query %q: %v", r.Name, r.Query, err)
			continue
		}
		t.Logf("rule %-30s %-8s %d series now", r.Name, r.State, len(v))
		// A healthy, drained pipeline fires nothing (the stages are up,
		// nothing failed, nothing broke, the lag is 0).
		if len(v) > 0 && r.Name != "AuditExportBackpressure" {
			t.Errorf("rule %s is true on a healthy pipeline: %v", r.Name, v)
		}
	}
	// And every dashboard query runs.
	for title, q := range dashboardExprs(loadDashboard(t)) {
		if _, err := api.query(q); err != nil {
			t.Errorf("dashboard %s: %v", title, err)
		}
	}

	// Stop: the first stage on SIGTERM, the rest on EOF; then the acker and
	// Prometheus.
	procs[0].stop(syscall.SIGTERM, 10*time.Second)
	for _, p := range procs {
		if err := p.stop(syscall.SIGTERM, 10*time.Second); err != nil {
			t.Errorf("%s: %v\n%s", p.name, err, p.stderr.String())
		}
	}
	if err := ack.stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Errorf("audit-ack: %v\n%s", err, ack.stderr.String())
	}
	if err := prom.stop(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Errorf("prometheus: %v", err)
	}
}
