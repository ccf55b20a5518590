package metrics_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/auditpipe/auditpipe/lib/metrics"
)

// scrape GETs url and parses the body in whatever format the server chose.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s: %s", resp.Status, b)
	}
	out := map[string]*dto.MetricFamily{}
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("parse scrape: %v", err)
		}
		out[mf.GetName()] = mf
	}
	return out
}

func TestServe(t *testing.T) {
	// An exporter name with every character the format must escape.
	s := metrics.New("audit-ship", metrics.Labels{Exporter: "splunk:\"odd\"\\name\nx", Vendor: "splunk"})
	touchAll(s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := s.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("Serve returned %q, not the bound port", addr)
	}

	got := scrape(t, "http://"+addr+"/metrics")
	for _, f := range contractFamilies {
		mf, ok := got[f.name]
		if !ok {
			t.Errorf("%s: missing from the scrape", f.name)
			continue
		}
		if mf.GetType() != f.typ {
			t.Errorf("%s: type %v, want %v", f.name, mf.GetType(), f.typ)
		}
		for _, m := range mf.GetMetric() {
			if v, _ := labelValue(m, "exporter"); v != "splunk:\"odd\"\\name\nx" {
				t.Errorf("%s: exporter label came back as %q", f.name, v)
			}
		}
	}
	if v := got["declaragent_audit_export_acked_total"].GetMetric()[0].GetCounter().GetValue(); v != 40 {
		t.Errorf("acked = %v, want 40", v)
	}
	for _, n := range []string{"go_goroutines", "promhttp_metric_handler_requests_total"} {
		if _, ok := got[n]; !ok {
			t.Errorf("%s missing from the scrape", n)
		}
	}
	// A counter moves between scrapes.
	s.ExportAcked().Add(2)
	if v := scrape(t, "http://"+addr+"/metrics")["declaragent_audit_export_acked_total"].GetMetric()[0].GetCounter().GetValue(); v != 42 {
		t.Errorf("acked = %v after Add(2), want 42", v)
	}

	resp, err := http.Get("http://" + addr + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/other: %s, want 404", resp.Status)
	}

	// When ctx ends the port is released.
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("metrics server still accepting connections 10s after ctx ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeErrors(t *testing.T) {
	s := metrics.New("audit-ship", metrics.Labels{})
	if _, err := s.Serve(context.Background(), "127.0.0.1:-1"); err == nil {
		t.Error("Serve on an invalid address: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Serve(ctx, "127.0.0.1:0"); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve with an ended ctx: %v, want context.Canceled", err)
	}
}
