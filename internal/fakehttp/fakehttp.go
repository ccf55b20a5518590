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
