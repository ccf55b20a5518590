// Command hecnull is a discarding Splunk HEC receiver for benchmarks: it
// answers every POST with {"text":"Success","code":0} after reading (and
// dropping) the body, and prints the bytes and requests it saw on exit. It
// is not a fake of Splunk's behaviour (see internal/fake/hecfake for that).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "listen address")
	portFile := flag.String("port-file", "", "write the bound address here once listening")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hecnull:", err)
		os.Exit(1)
	}
	var reqs, bytes atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		reqs.Add(1)
		bytes.Add(n)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"text":"Success","code":0}`)
	})}
	if *portFile != "" {
		os.WriteFile(*portFile+".tmp", []byte(ln.Addr().String()), 0o600)
		os.Rename(*portFile+".tmp", *portFile)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go srv.Serve(ln)
	<-ctx.Done()
	srv.Shutdown(context.Background())
	fmt.Fprintf(os.Stderr, "hecnull: %d requests, %d body bytes\n", reqs.Load(), bytes.Load())
}
