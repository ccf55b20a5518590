package backpressure

import (
	"io"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/metricstest"
)

// TestStagesRunOnOneP: the five streaming stages run with GOMAXPROCS 1
// unless the environment sets GOMAXPROCS (lib/cli.MainProcs; docs/perf.md
// has the measurement behind it), and a GOMAXPROCS in the environment
// wins. Read from each process's own go_sched_gomaxprocs_threads.
func TestStagesRunOnOneP(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build(t, bin)
	db := filepath.Join(dir, "audit.db")
	appendRecords(t, bin, db, 10, 1, 0)
	t.Setenv("BP_HEC_TOKEN", token)

	stages := []struct {
		name string
		args []string
	}{
		{"audit-read", []string{"--db", db, "--follow", "--quiet"}},
		{"audit-verify", []string{"--quiet"}},
		{"audit-batch", []string{"--siem", "splunk", "--quiet"}},
		{"audit-ship", []string{"--kind", "splunk", "--url", "http://127.0.0.1:9", "--token", "env:BP_HEC_TOKEN",
			"--exporter", exporter, "--acks", "-", "--quiet"}},
		{"audit-ack", []string{"--db", db, "--exporter", exporter, "--new-cursor", "--quiet"}},
	}
	for _, env := range []struct {
		gomaxprocs string
		want       float64
	}{{"", 1}, {"3", 3}} {
		t.Setenv("GOMAXPROCS", env.gomaxprocs)
		for _, s := range stages {
			// stdin a pipe nobody writes: each stage waits, serving metrics.
			r, w := io.Pipe()
			p := start(t, r, io.Discard, bin, s.name, append(s.args, "--metrics-listen", "127.0.0.1:0")...)
			fams, err := metricstest.Scrape(p.metricsURL(t))
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			got, ok := fams.Value("go_sched_gomaxprocs_threads")
			if !ok || got != env.want {
				t.Errorf("GOMAXPROCS=%q %s: go_sched_gomaxprocs_threads = %v (present %v), want %v",
					env.gomaxprocs, s.name, got, ok, env.want)
			}
			p.stop(syscall.SIGTERM, 5*time.Second)
			w.Close()
		}
	}
}
