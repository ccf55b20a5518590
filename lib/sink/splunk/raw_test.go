package splunk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/route"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// --endpoint raw: the record lines, byte for byte (the awkward ones too:
// escapes, non-ASCII), arrive as one event each at /services/collector/raw,
// gzip or not, with a channel GUID generated for it and the metadata as
// query parameters, with Content-Type text/plain.
func TestRawEndpointSendsTheLines(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			f := startFake(t, hecfake.Options{Tokens: []string{token}})
			s := newSink(t, Config{URL: f.URL, Gzip: gz, Endpoint: EndpointRaw, Index: "audit", Source: "auditpipe", Host: "h1"})
			recs := records(len(sinktest.Awkward)+20, 300)
			res, err := s.Send(context.Background(), recs)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if !slices.Equal(res.Status, repeat(sink.Delivered, len(recs))) {
				t.Fatalf("statuses %v", res.Status)
			}
			evs := f.Events()
			if len(evs) != len(recs) {
				t.Fatalf("%d events for %d records", len(evs), len(recs))
			}
			for i, e := range evs {
				if e.Event != string(recs[i].Line) {
					t.Fatalf("event %d:\n got %q\nwant %q", i, e.Event, recs[i].Line)
				}
				if e.Endpoint != "raw" || e.Gzip != gz || !guidRE.MatchString(e.Channel) || e.Channel != s.Channel() ||
					e.Index != "audit" || e.Source != "auditpipe" || e.Host != "h1" || e.Sourcetype != DefaultSourcetype ||
					e.Header["Content-Type"] != "text/plain" {
					t.Fatalf("event %d: %+v", i, e)
				}
			}
			if c := f.Counts(); c.Raw != 1 || c.Event != 0 {
				t.Errorf("counts %+v, want one raw request", c)
			}
			if err := s.Check(context.Background()); err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}

// HEC's answers to /raw are handled as for /event: a refused token is a
// configuration error, a bad body (no invalid-event-number on raw) a bad
// request for the engine to split, 413 too large, a refused channel a
// configuration error; with --indexer-ack the raw request's ackId is polled.
func TestRawEndpointAnswers(t *testing.T) {
	recs := records(5, 200)
	bad := func(e *hecfake.Event) bool { return strings.Contains(e.Event, recs[2].Hash) }
	tests := []struct {
		name   string
		opts   hecfake.Options
		cfg    Config
		class  sink.Class
		status int
		code   int
	}{
		{name: "token refused", opts: hecfake.Options{Tokens: []string{"other"}}, class: sink.Config, status: 403, code: 4},
		{name: "poison line", opts: hecfake.Options{Poison: bad}, class: sink.BadRequest, status: 400, code: 6},
		{name: "index refused", opts: hecfake.Options{AllowedIndexes: []string{"main"}}, cfg: Config{Index: "audit"}, class: sink.Config, status: 400, code: 7},
		{name: "too large", opts: hecfake.Options{MaxContentLength: 100}, class: sink.TooLarge, status: 413, code: -1},
		{name: "indexer ack", opts: hecfake.Options{IndexerAck: true}, cfg: Config{IndexerAck: true, AckPoll: 10_000_000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t, tt.opts)
			cfg := tt.cfg
			cfg.URL, cfg.Endpoint, cfg.Gzip = f.URL+RawPath, EndpointRaw, true
			s := newSink(t, cfg)
			res, err := s.Send(context.Background(), recs)
			noSecret(t, err)
			if tt.status == 0 {
				if err != nil || !slices.Equal(res.Status, repeat(sink.Delivered, len(recs))) || len(f.Events()) != len(recs) {
					t.Fatalf("Send: %v %v, %d events", res.Status, err, len(f.Events()))
				}
				if f.Counts().Ack == 0 {
					t.Errorf("no ack poll")
				}
				return
			}
			var se *sink.Error
			if !errors.As(err, &se) || se.Class != tt.class || se.HTTPStatus != tt.status || se.Code != tt.code {
				t.Fatalf("err = %#v, want class %v status %d code %d", err, tt.class, tt.status, tt.code)
			}
			if slices.Contains(res.Status, sink.Delivered) {
				t.Errorf("statuses %v: nothing of a refused raw request is delivered", res.Status)
			}
		})
	}
}

// The raw endpoint's configuration: a URL ending in /raw is taken with
// --endpoint raw (and refused, with the fix, without it), the channel given
// is used, an unknown endpoint and a routed index are refused.
func TestRawEndpointConfig(t *testing.T) {
	tok, _ := tokenSource(t, token)
	const ch = "0F8D6C2E-3C1A-4F7E-9B1D-2A5E8C7D9F10"
	tmpl, err := route.Parse("audit_${tenant:id}", route.SplunkIndex)
	if err != nil {
		t.Fatalf("route: %v", err)
	}
	ixFor := tmpl.Render
	tests := []struct {
		name    string
		cfg     Config
		raw     string
		wantErr string
	}{
		{name: "base URL", cfg: Config{URL: "https://s.example.com:8088", Channel: ch, Sourcetype: "st"},
			raw: "https://s.example.com:8088/services/collector/raw?channel=" + ch + "&host=h&sourcetype=st"},
		{name: "raw URL with a prefix", cfg: Config{URL: "https://s.example.com/p/services/collector/raw", Channel: ch, Index: "a b"},
			raw: "https://s.example.com/p/services/collector/raw?channel=" + ch + "&host=h&index=a+b&sourcetype=declaragent%3Aaudit"},
		{name: "raw URL without --endpoint raw", cfg: Config{URL: "https://s.example.com/services/collector/raw", Endpoint: EndpointEvent}, wantErr: "--endpoint raw"},
		{name: "unknown endpoint", cfg: Config{URL: "https://s.example.com", Endpoint: "json"}, wantErr: `endpoint "json"`},
		{name: "routed index", cfg: Config{URL: "https://s.example.com", IndexFor: ixFor}, wantErr: "one index per request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Token, cfg.Host = tok, "h"
			if cfg.Endpoint == "" {
				cfg.Endpoint = EndpointRaw
			}
			s, err := New(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got, _ := url.Parse(s.rawURL)
			want, _ := url.Parse(tt.raw)
			if got.Scheme+got.Host+got.Path != want.Scheme+want.Host+want.Path || got.Query().Encode() != want.Query().Encode() {
				t.Errorf("raw URL %s, want %s", s.rawURL, tt.raw)
			}
		})
	}
}

// --hec-fields=false: the same event, the record line byte for byte and the
// metadata, without the "fields" block; the default keeps it.
func TestNoFields(t *testing.T) {
	for _, noFields := range []bool{false, true} {
		f := startFake(t, hecfake.Options{})
		s := newSink(t, Config{URL: f.URL, Gzip: true, NoFields: noFields, Host: "h1"})
		recs := records(len(sinktest.Awkward), 300)
		if _, err := s.Send(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
		for i, e := range f.Events() {
			if e.Event != string(recs[i].Line) || e.Host != "h1" || e.Time == "" {
				t.Fatalf("noFields=%v: event %d: %+v", noFields, i, e)
			}
			if noFields != (e.Fields == nil) {
				t.Fatalf("noFields=%v: fields %v", noFields, e.Fields)
			}
			if !noFields && e.Fields["recordHash"] != recs[i].Hash {
				t.Fatalf("fields %v", e.Fields)
			}
		}
	}
}

// With the raw endpoint, a batch's checkpoint lines (seal
// --emit-checkpoints) go to /event under the checkpoint sourcetype, where
// audit-fetch looks for them, and the records to /raw: none is sent as a
// raw line of the records' sourcetype, none is lost.
func TestRawEndpointCheckpointsGoToEvent(t *testing.T) {
	for _, base := range []string{"", "/services/collector/raw"} {
		f := startFake(t, hecfake.Options{Tokens: []string{token}})
		s := newSink(t, Config{URL: f.URL + base, Endpoint: EndpointRaw, Index: "audit"})
		recs := records(4, 300)
		note := "example.com/log\n2\nROOT=\n\n— example.com/log SIG=\n"
		line, _ := json.Marshal(map[string]string{"checkpoint": note})
		cp := sink.Record{Seq: recs[1].Seq, Line: line, Checkpoint: []byte(note)}
		batch := append(append(append([]sink.Record{}, recs[:2]...), cp), recs[2:]...)
		res, err := s.Send(context.Background(), batch)
		if err != nil {
			t.Fatalf("%s: Send: %v", base, err)
		}
		if !slices.Equal(res.Status, repeat(sink.Delivered, len(batch))) {
			t.Fatalf("%s: statuses %v", base, res.Status)
		}
		var raw, ev int
		for _, e := range f.Events() {
			switch {
			case e.Endpoint == "raw" && e.Sourcetype == DefaultSourcetype && !strings.Contains(e.Event, `"checkpoint"`):
				raw++
			case e.Endpoint != "raw" && e.Sourcetype == DefaultSourcetype+CheckpointSuffix && e.Event == string(line):
				ev++
			default:
				t.Fatalf("%s: unexpected event %+v", base, e)
			}
		}
		if raw != len(recs) || ev != 1 {
			t.Fatalf("%s: %d raw records and %d checkpoint events, want %d and 1", base, raw, ev, len(recs))
		}
	}
}
