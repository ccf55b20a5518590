package httpsink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// TestReleasedBodyOutlivesTheRequest: bodies released right after Do
// (poisoned with 0xAA on release in this test) and reused by the next
// ones reach a real server byte-exact, the first answered before the
// server read a byte of it (net/http's transport then waits up to 50 ms
// for the body's write to end before Do returns, or gives the connection
// up: on a slow host the server may read only a part, which must still
// be the body's), and each body's memory is pooled once the transport
// closed it. TestReleaseWaitsForTheTransport is the case of a transport
// that reads the body after Do returned.
func TestReleasedBodyOutlivesTheRequest(t *testing.T) {
	defer func(v bool) { poisonReleased = v }(poisonReleased)
	poisonReleased = true

	got := make(chan []byte, 1)
	var first sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		early := false
		first.Do(func() { early = true })
		if early {
			// Answer before reading a byte, then read the body.
			http.NewResponseController(w).EnableFullDuplex()
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "{}")
			http.NewResponseController(w).Flush()
		}
		body, err := io.ReadAll(r.Body)
		if err != nil && !early {
			body = append(body, fmt.Sprintf("[read: %v]", err)...)
		}
		if !early {
			io.WriteString(w, "{}")
		}
		got <- body
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c, err := NewClient(ClientConfig{Name: "test", Vendor: "test", URL: u, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// More than the sockets between client and server hold, so the
	// transport is still writing when the answer comes.
	line := func(k int) func(dst []byte, i int) []byte {
		return func(dst []byte, i int) []byte {
			return fmt.Appendf(dst, "request %d line %d %s\n", k, i, bytes.Repeat([]byte{'x'}, i%500))
		}
	}
	const n = 60_000
	for k, gz := range []bool{false, true, false, true} {
		b, err := Encode(gz, n*300, n, line(k))
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Clone(b.Data)
		p := b.buf
		if p == nil {
			t.Fatal("Encode's body is not pooled memory")
		}
		r, err := c.Do(context.Background(), Request{Method: http.MethodPost, URL: srv.URL, Body: b, ContentType: "text/plain"})
		if err != nil {
			t.Fatalf("request %d: %v", k, err)
		}
		b.Release()
		b.Release() // a second release is a no-op
		select {
		case body := <-got:
			if k == 0 {
				t.Logf("early answer: %d of %d bytes sent when it came; the server then read %d", r.Sent, r.Size, len(body))
				if len(body) < len(want) && bytes.Equal(body, want[:len(body)]) {
					want = want[:len(body)] // the connection was given up: a part, but the body's
				}
			}
			if !bytes.Equal(body, want) {
				i := 0
				for i < len(body) && i < len(want) && body[i] == want[i] {
					i++
				}
				t.Fatalf("request %d: the server read %d bytes that differ from the %d sent at byte %d (%q): the memory was released while the transport still read it",
					k, len(body), len(want), i, body[i:min(i+16, len(body))])
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("request %d: the server got no body", k)
		}
		deadline := time.Now().Add(10 * time.Second)
		for p.refs.Load() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("request %d: the body's memory is still referenced (%d) after the transport was done with it", k, p.refs.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestReleasedBodyReadsFail: a request body made of memory released and
// handed out again reads nothing of the new body.
func TestReleasedBodyReadsFail(t *testing.T) {
	b, err := Encode(false, 100, 1, func(dst []byte, i int) []byte { return append(dst, "old body"...) })
	if err != nil {
		t.Fatal(err)
	}
	req, err := newRequest(context.Background(), http.MethodPost, "http://127.0.0.1:1/", b, "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	req.Body.Close()
	p := b.buf
	b.Release()
	if p.refs.Load() != 0 {
		t.Fatalf("refs %d after the body was closed and released", p.refs.Load())
	}
	// The memory may now be another body's: a late copy must not read it.
	again, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := again.Read(make([]byte, 64)); n != 0 || err == nil {
		t.Fatalf("a copy made after release read %d bytes (%v)", n, err)
	}
}

// lateReader is an http.RoundTripper that answers at once and reads and
// closes the request body later, in another goroutine, once told to
// (read): what the RoundTripper contract allows ("RoundTrip must always
// close the body ... but may do so in a separate goroutine even after
// RoundTrip returns"), and what net/http's own transport does when an
// answer comes before the body is written.
type lateReader struct {
	read chan struct{}
	got  chan []byte
}

func (l *lateReader) RoundTrip(req *http.Request) (*http.Response, error) {
	go func() {
		<-l.read
		b, err := io.ReadAll(req.Body)
		if err != nil {
			b = append(b, fmt.Sprintf("[read: %v]", err)...)
		}
		req.Body.Close()
		l.got <- b
	}()
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader([]byte("{}"))), Request: req}, nil
}

// TestReleaseWaitsForTheTransport: a body released while the transport
// still holds it unread is not poisoned (0xAA) nor reused until the
// transport closed it: the transport reads it byte-exact after Release,
// while other bodies are encoded (and would take the memory).
func TestReleaseWaitsForTheTransport(t *testing.T) {
	defer func(v bool) { poisonReleased = v }(poisonReleased)
	poisonReleased = true
	lr := &lateReader{read: make(chan struct{}), got: make(chan []byte, 1)}
	u, _ := url.Parse("http://127.0.0.1:1/")
	c, err := NewClient(ClientConfig{Name: "test", Vendor: "test", URL: u, Timeout: 30 * time.Second, Transport: lr})
	if err != nil {
		t.Fatal(err)
	}
	part := func(k int) func(dst []byte, i int) []byte {
		return func(dst []byte, i int) []byte { return fmt.Appendf(dst, "body %d line %d\n", k, i) }
	}
	for _, gz := range []bool{false, true} {
		b, err := Encode(gz, 20_000, 1000, part(0))
		if err != nil {
			t.Fatal(err)
		}
		want, p := bytes.Clone(b.Data), b.buf
		if _, err := c.Do(context.Background(), Request{Method: http.MethodPost, URL: u.String(), Body: b, ContentType: "text/plain"}); err != nil {
			t.Fatal(err)
		}
		b.Release()
		if n := p.refs.Load(); n != 1 {
			t.Errorf("gzip %v: %d references after Release with the body unread, want 1 (the transport's)", gz, n)
		}
		for k := 1; k <= 3; k++ { // bodies made meanwhile must not take the memory
			o, _ := Encode(gz, 20_000, 1000, part(k))
			if o.buf == p {
				t.Errorf("gzip %v: a body encoded while the transport held the released one got its memory", gz)
			}
			o.Release()
		}
		lr.read <- struct{}{}
		if got := <-lr.got; !bytes.Equal(got, want) {
			t.Fatalf("gzip %v: the transport read %d bytes, not the %d of the body (released too early)", gz, len(got), len(want))
		}
		if n := p.refs.Load(); n != 0 {
			t.Fatalf("gzip %v: %d references once the transport closed the body, want 0 (pooled)", gz, n)
		}
	}
}
