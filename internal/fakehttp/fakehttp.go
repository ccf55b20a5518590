// Package fakehttp starts the HTTP servers behind the protocol fakes
// (hecfake, esfake, ddfake): on 127.0.0.1 only, plain or TLS, with the
// server's own error log silenced (a failed TLS handshake is what some
// tests want to cause).
package fakehttp

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"time"
)

// Start serves h on a free port of 127.0.0.1, with TLS if useTLS. name
// prefixes the panic if no port can be had (a fake has no error return).
func Start(name string, h http.Handler, useTLS bool) *httptest.Server {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("%s: listen on 127.0.0.1: %v", name, err))
	}
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = l
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	return s
}

// Gunzip decompresses a gzip request body, reading at most max bytes of
// what it holds.
func Gunzip(b []byte, max int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(io.LimitReader(zr, max))
	if err != nil {
		return nil, err
	}
	return out, zr.Close()
}

// Wait holds the answer to r back for d (a slow SIEM). It reports false
// if the client went away first: then there is nobody to answer.
func Wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// Raw is an answer a fake sends as it is, in place of the protocol's own:
// the answers no SIEM documents as success and a sink must not take for
// one (a proxy's HTML page, an empty 200, truncated JSON, a reply sent
// before the request body was read).
type Raw struct {
	Status      int    // the status (0: 200)
	ContentType string // the Content-Type header ("": none)
	Body        string // the body, sent as it is
	// Early sends the answer as soon as the request's headers are in,
	// before a byte of its body is read; the body is read (and dropped)
	// only EarlyHold later, so a client still writing a large body gets
	// the answer before it has handed over all of it.
	Early bool
}

// EarlyHold is how long an Early answer leaves the request body unread.
const EarlyHold = 300 * time.Millisecond

// Serve sends a. For an Early answer, r's body must be unread: Serve
// writes and flushes the answer first, then reads the body after
// EarlyHold. Otherwise the caller has read the body already.
func (a *Raw) Serve(w http.ResponseWriter, r *http.Request) {
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	if a.ContentType != "" {
		w.Header().Set("Content-Type", a.ContentType)
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(a.Body)))
	if !a.Early {
		w.WriteHeader(status)
		io.WriteString(w, a.Body)
		return
	}
	rc := http.NewResponseController(w)
	rc.EnableFullDuplex() // read the body after the answer went out
	w.WriteHeader(status)
	io.WriteString(w, a.Body)
	rc.Flush()
	if !Wait(r, EarlyHold) {
		return
	}
	io.Copy(io.Discard, r.Body)
}
