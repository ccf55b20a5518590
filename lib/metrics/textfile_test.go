package metrics_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/auditpipe/auditpipe/lib/metrics"
)

func parseText(t *testing.T, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse textfile: %v\n%s", err, b)
	}
	return mfs
}

func TestWriteTextfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit-ship.prom")
	// An older file, world-readable: the new one replaces it, mode and all.
	if err := os.WriteFile(path, []byte("old 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s := metrics.New("audit-ship", metrics.Labels{Exporter: "splunk:\"odd\"\\name\nx", Vendor: "splunk"})
	touchAll(s)
	if err := s.WriteTextfile(path); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want -rw-r-----", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want only audit-ship.prom (no temp file left)", names)
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := parseText(t, b)
	if _, ok := got["old"]; ok {
		t.Error("the old file's content survived")
	}
	for _, f := range slices.Concat(contractFamilies, ownFamilies) {
		mf, ok := got[f.name]
		if !ok {
			t.Errorf("%s: missing from the textfile", f.name)
			continue
		}
		if mf.GetType() != f.typ {
			t.Errorf("%s: type %v, want %v", f.name, mf.GetType(), f.typ)
		}
		wantLabels := slices.Sorted(slices.Values(append([]string{"binary"}, f.labels...)))
		for _, m := range mf.GetMetric() {
			if ns := labelNames(m); !slices.Equal(ns, wantLabels) {
				t.Errorf("%s: labels %q, want %q", f.name, ns, wantLabels)
			}
			if v, _ := labelValue(m, "binary"); v != "audit-ship" {
				t.Errorf("%s: binary=%q", f.name, v)
			}
			if v, _ := labelValue(m, "exporter"); v != "splunk:\"odd\"\\name\nx" {
				t.Errorf("%s: exporter label came back as %q", f.name, v)
			}
			if m.TimestampMs != nil {
				t.Errorf("%s: has a timestamp (node_exporter rejects the file)", f.name)
			}
		}
	}
	if v := got["declaragent_audit_export_acked_total"].GetMetric()[0].GetCounter().GetValue(); v != 40 {
		t.Errorf("acked = %v, want 40", v)
	}
	for name := range got {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			t.Errorf("%s in the textfile: node_exporter exports its own", name)
		}
	}
}

// A reader never sees a partial file, however often the file is rewritten.
func TestWriteTextfileAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.prom")
	s := metrics.New("audit-read", metrics.Labels{})
	for _, r := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		s.VerifyBreaks(strings.Repeat(r, 2000)).Inc() // a file of several pages
	}
	s.RecordsIn().Inc()
	if err := s.WriteTextfile(path); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(path)
	wantFamilies := len(parseText(t, want))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var reads int
	var bad []string
	go func() {
		defer wg.Done()
		p := expfmt.NewTextParser(model.LegacyValidation)
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil {
				bad = append(bad, err.Error())
				return
			}
			reads++
			mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
			if err != nil || len(mfs) != wantFamilies || !bytes.HasSuffix(b, []byte("\n")) {
				bad = append(bad, string(b[max(0, len(b)-80):]))
				return
			}
		}
	}()
	for range 50 {
		s.RecordsIn().Inc()
		if err := s.WriteTextfile(path); err != nil {
			t.Error(err)
			break
		}
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("a reader saw a partial or missing file after %d good reads: %q", reads, bad)
	}
	if v := testutil.ToFloat64(s.RecordsIn()); v != 51 {
		t.Fatalf("records in = %v", v)
	}
}

func TestWriteTextfileErrors(t *testing.T) {
	s := metrics.New("audit-read", metrics.Labels{})
	s.RecordsIn().Inc()
	err := s.WriteTextfile(filepath.Join(t.TempDir(), "no-such-dir", "m.prom"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteTextfile into a missing directory: %v, want ErrNotExist", err)
	}
}

// Cron jobs: the last write, after ctx ends, has the final counts.
func TestTextfileLoop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.prom")
	s := metrics.New("audit-read", metrics.Labels{})
	s.RecordsIn().Inc()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.TextfileLoop(ctx, path, 0) }()
	s.RecordsIn().Add(41) // maybe before the first write, maybe after
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if v := parseText(t, b)["auditpipe_records_in_total"].GetMetric()[0].GetCounter().GetValue(); v != 42 {
		t.Errorf("records in = %v in the final textfile, want 42", v)
	}

	// The final write's error is returned.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := s.TextfileLoop(ctx, filepath.Join(t.TempDir(), "missing", "m.prom"), 0); err == nil {
		t.Error("TextfileLoop into a missing directory: no error")
	}
}

// promtool check metrics, when installed (Debian: prometheus), on both the
// textfile and the full HTTP exposition. It exits 3 for lint problems; only
// those of names the contract fixes are accepted.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (Debian package prometheus)")
	}
	s := metrics.New("audit-ship", metrics.Labels{Exporter: "splunk:\"odd\"\\name\nx", Vendor: "splunk"})
	touchAll(s)
	path := filepath.Join(t.TempDir(), "audit-ship.prom")
	if err := s.WriteTextfile(path); err != nil {
		t.Fatal(err)
	}
	textfile, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// What a scraper gets, go_ and process_ metrics included.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := s.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scraped, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		input    []byte
		mustHave string // so that an empty input cannot pass
	}{
		{"textfile", textfile, "declaragent_audit_export_failures_total{"},
		{"scrape", scraped, "go_goroutines "},
	} {
		name, input := tc.name, tc.input
		if !bytes.Contains(input, []byte(tc.mustHave)) {
			t.Fatalf("%s: no %q in the input", name, tc.mustHave)
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(input)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee) && ee.ExitCode() == 3:
			// Lint problems, one "<metric> <text>" per line.
			sc := bufio.NewScanner(&stderr)
			for sc.Scan() {
				metric, text, _ := strings.Cut(sc.Text(), " ")
				if allowedLint[metric] != text {
					t.Errorf("%s: promtool: %s", name, sc.Text())
				}
			}
		default:
			t.Errorf("%s: promtool check metrics: %v\n%s%s", name, err, stdout.Bytes(), stderr.Bytes())
		}
	}
}
