package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Serve serves the Set's registry at /metrics on addr (the --metrics-listen
// flag, e.g. "127.0.0.1:9464"; port 0 picks a free port) and returns the
// address it is bound to. The server runs until ctx ends, then shuts down.
//
// A collector error does not fail the scrape: the rest is served, the error
// goes to ErrorLog and is counted in promhttp_metric_handler_errors_total,
// so one failing collector (say, an unreadable /proc) cannot silence the
// contract metrics that alerts depend on.
//
// Serve is for processes that run long enough to be scraped. A run shorter
// than the scrape interval should write a textfile (TextfileLoop) instead:
// whatever it counted after the last scrape is never seen.
func (s *Set) Serve(ctx context.Context, addr string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen for metrics: %w", err)
	}
	opts := promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            s.Registry,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}
	errLog := s.ErrorLog
	if errLog == nil {
		errLog = log.New(io.Discard, "", 0)
	}
	opts.ErrorLog = errLog
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(s.Registry, promhttp.HandlerFor(s.Registry, opts)))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          errLog,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errLog.Printf("serve metrics: %v", err)
		}
	}()
	go func() {
		<-ctx.Done()
		// A scrape in progress gets a moment to finish; then the socket closes.
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
	}()
	return ln.Addr().String(), nil
}
