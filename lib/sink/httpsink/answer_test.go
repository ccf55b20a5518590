package httpsink

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestRoundTripCountsBodySent: a server that reads the body before it
// answers sees Sent == Size; one that answers first (and reads later) is
// caught with Sent < Size, for a body larger than the socket buffers.
func TestRoundTripCountsBodySent(t *testing.T) {
	readFirst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	defer readFirst.Close()
	answerFirst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.EnableFullDuplex()
		io.WriteString(w, "ok")
		rc.Flush()
		time.Sleep(300 * time.Millisecond)
		io.Copy(io.Discard, r.Body)
	}))
	defer answerFirst.Close()
	for _, c := range []struct {
		name string
		url  string
		size int
		sent bool
	}{
		{"small, read first", readFirst.URL, 1000, true},
		{"large, read first", readFirst.URL, 40 << 20, true},
		{"large, answered first", answerFirst.URL, 40 << 20, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, err := NewRequest(ctx, http.MethodPost, c.url, bytes.Repeat([]byte("a"), c.size), false, "text/plain")
			if err != nil {
				t.Fatal(err)
			}
			r, err := RoundTrip(http.DefaultClient, req, 1024, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if r.Size != int64(c.size) || r.BodySent() != c.sent {
				t.Fatalf("Sent %d of %d, BodySent %v, want %v", r.Sent, r.Size, r.BodySent(), c.sent)
			}
		})
	}
}

// TestUnexpected: the failure names status, content type and the first
// bytes of the body, masks secrets, and is retryable.
func TestUnexpected(t *testing.T) {
	r := &Reply{Status: 200, Header: http.Header{"Content-Type": {"text/html"}},
		Body: []byte("<html>" + strings.Repeat("é", 300) + " tok-SECRET</html>"), Sent: 10, Size: 10}
	e := Unexpected(r, "HEC", `200 {"code":0}`, "the body is not a JSON object", []string{"tok-SECRET"}, "[token]")
	if e.Class != sink.Retryable || e.HTTPStatus != 200 {
		t.Fatalf("%+v", e)
	}
	for _, w := range []string{`not HEC's success answer (200 {"code":0})`, "the body is not a JSON object", `Content-Type "text/html"`, `-byte body "<html>éé`, "…"} {
		if !strings.Contains(e.Msg, w) {
			t.Fatalf("lacks %q: %s", w, e.Msg)
		}
	}
	r.Body = []byte("x tok-SECRET")
	if e := Unexpected(r, "HEC", "", "", []string{"tok-SECRET"}, "[token]"); strings.Contains(e.Msg, "tok-SECRET") {
		t.Fatalf("leaks: %s", e.Msg)
	}
	r.Sent = 3
	if e := Unexpected(r, "HEC", "", "whatever", nil, ""); !strings.Contains(e.Msg, "before the request body was sent in full (3 of 10 bytes)") {
		t.Fatalf("early: %s", e.Msg)
	}
}

func TestStore(t *testing.T) {
	vl := http.Header{"X-Server-Hostname": {"vm"}}
	other := http.Header{"Server": {"Splunkd"}}
	for _, c := range []struct {
		name        string
		seen        []int // status; negative: from VictoriaLogs
		known, isVL bool
	}{
		{"nothing yet", nil, false, false},
		{"a proxy's 502 only", []int{502}, false, false},
		{"a 200 from another store", []int{200}, true, false},
		{"VictoriaLogs", []int{-200}, true, true},
		{"VictoriaLogs, then a proxy's page", []int{-200, 200}, true, true},
		{"a 503 from VictoriaLogs", []int{-503}, true, true},
	} {
		var s Store
		for _, st := range c.seen {
			h := other
			if st < 0 {
				h, st = vl, -st
			}
			s.Saw(st, h)
		}
		if known, isVL := s.Known(); known != c.known || isVL != c.isVL {
			t.Errorf("%s: Known() = %v, %v", c.name, known, isVL)
		}
	}
}
