// Command siemnull is a discarding receiver for benchmarks that speaks the
// success answer of every HTTP intake auditpipe ships to, at as little cost
// as it can, so that a benchmark measures the shipper and not the receiver:
//
//	POST .../services/collector[/event|/raw...]  200 {"text":"Success","code":0}  (Splunk HEC)
//	POST .../_bulk                                200 {"errors":false,"items":[{"create":{"status":201}},...]}
//	                                              (Elasticsearch bulk: one item per document sent)
//	POST .../api/v2/logs                          202 {}  (Datadog logs v2)
//	GET  .../services/collector/health            200 {"text":"HEC is healthy","code":17}
//	GET  .../api/v1/validate                      200 {"valid":true}
//	GET  / (or any other GET)                     200 {"name":"siemnull","version":{"number":"8.0.0"}}
//
// Every body is read to its end (a sink takes an answer that came before
// its whole body was sent for no answer at all), in 256 KiB reads into a
// pooled buffer, and dropped. Nothing is decompressed or parsed, except
// that a bulk body must be counted: the sink marks a document delivered
// only from its item, so the receiver counts the body's lines (two per
// document: action and source) and, for Content-Encoding: gzip,
// decompresses to count them. That is the only costly work it does, and
// only for the elastic sink; a benchmark reports the receiver's CPU apart
// (it reads /proc/PID/stat).
//
// It prints the requests, body bytes (as received) and bulk documents it
// saw, by intake, on SIGINT/SIGTERM. It is not a fake of any SIEM's
// behaviour (see internal/fake for those).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/klauspost/compress/gzip"
)

// readSize is the size of one body read.
const readSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

// counts are one intake's totals.
type counts struct{ reqs, bytes, docs atomic.Int64 }

// bulkItem is one item of the bulk answer, as VictoriaLogs writes it.
const bulkItem = `{"create":{"status":201}}`

// items holds bulkItem repeated with commas, so that an answer for n
// documents is a slice of it, built once.
var (
	itemsMu sync.Mutex
	items   []byte
)

// bulkAnswer returns the bulk answer for n documents.
func bulkAnswer(n int) []byte {
	itemsMu.Lock()
	defer itemsMu.Unlock()
	if need := n * (len(bulkItem) + 1); len(items) < need {
		b := make([]byte, 0, need)
		for len(b) < need {
			b = append(b, bulkItem...)
			b = append(b, ',')
		}
		items = b
	}
	out := make([]byte, 0, 32+n*(len(bulkItem)+1))
	out = append(out, `{"errors":false,"items":[`...)
	if n > 0 {
		out = append(out, items[:n*(len(bulkItem)+1)-1]...)
	}
	return append(out, "]}"...)
}

// drain reads r to its end and returns the bytes read and, if lines, the
// newlines among them.
func drain(r io.Reader, lines bool) (n, nl int64, err error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if lines {
			nl += int64(bytes.Count(buf[:k], []byte{'\n'}))
		}
		if err == io.EOF {
			return n, nl, nil
		}
		if err != nil {
			return n, nl, err
		}
	}
}

// countingReader counts the bytes read through it (the compressed body).
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func main() {
	addr := flag.String("listen", "127.0.0.1:0", "listen address")
	portFile := flag.String("port-file", "", "write the bound address here once listening")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "siemnull:", err)
		os.Exit(1)
	}
	var hec, bulk, dd counts
	srv := &http.Server{Handler: handler(&hec, &bulk, &dd)}
	if *portFile != "" {
		os.WriteFile(*portFile+".tmp", []byte(ln.Addr().String()), 0o600)
		os.Rename(*portFile+".tmp", *portFile)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go srv.Serve(ln)
	<-ctx.Done()
	srv.Shutdown(context.Background())
	fmt.Fprintf(os.Stderr, "siemnull: HEC %d requests, %d body bytes; bulk %d requests, %d body bytes, %d documents; datadog %d requests, %d body bytes\n",
		hec.reqs.Load(), hec.bytes.Load(), bulk.reqs.Load(), bulk.bytes.Load(), bulk.docs.Load(), dd.reqs.Load(), dd.bytes.Load())
}

// handler answers each intake's success answer, counting into hec, bulk
// and dd.
func handler(hec, bulk, dd *counts) http.HandlerFunc {
	var gzPool sync.Pool
	return func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost {
			drain(r.Body, false)
			switch {
			case strings.HasSuffix(p, "/services/collector/health") || strings.HasSuffix(p, "/services/collector/health/1.0"):
				io.WriteString(w, `{"text":"HEC is healthy","code":17}`)
			case strings.HasSuffix(p, "/api/v1/validate"):
				io.WriteString(w, `{"valid":true}`)
			default:
				io.WriteString(w, `{"name":"siemnull","version":{"number":"8.0.0"}}`)
			}
			return
		}
		switch {
		case strings.Contains(p, "/services/collector"):
			n, _, err := drain(r.Body, false)
			hec.reqs.Add(1)
			hec.bytes.Add(n)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			io.WriteString(w, `{"text":"Success","code":0}`)
		case strings.HasSuffix(p, "/_bulk"):
			var n, nl int64
			var err error
			if r.Header.Get("Content-Encoding") == "gzip" {
				cr := &countingReader{r: r.Body}
				zr, _ := gzPool.Get().(*gzip.Reader)
				if zr == nil {
					zr, err = gzip.NewReader(cr)
				} else {
					err = zr.Reset(cr)
				}
				if err == nil {
					_, nl, err = drain(zr, true)
					gzPool.Put(zr)
				}
				rest, _, _ := drain(r.Body, false) // anything after the gzip stream
				n = cr.n + rest
			} else {
				n, nl, err = drain(r.Body, true)
			}
			bulk.reqs.Add(1)
			bulk.bytes.Add(n)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			docs := int(nl / 2)
			bulk.docs.Add(int64(docs))
			ans := bulkAnswer(docs)
			w.Header().Set("Content-Length", strconv.Itoa(len(ans)))
			w.Write(ans)
		case strings.HasSuffix(p, "/api/v2/logs"):
			n, _, err := drain(r.Body, false)
			dd.reqs.Add(1)
			dd.bytes.Add(n)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{}`)
		default:
			drain(r.Body, false)
			http.Error(w, `{"error":"siemnull: no intake at `+strconv.Quote(p)+`"}`, http.StatusNotFound)
		}
	}
}
