// Package fakehttp starts the HTTP servers behind the protocol fakes
// (hecfake, esfake, ddfake): on 127.0.0.1 only, plain or TLS, with the
// server's own error log silenced (a failed TLS handshake is what some
// tests want to cause).
package fakehttp

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
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
