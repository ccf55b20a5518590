package auditship

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/ship"
)

// errDryRun is what the capture transport answers every request with:
// the request was recorded, not sent.
var errDryRun = errors.New("dry run: not sent")

// captured is one request as the sink built it.
type captured struct {
	method, url string
	header      http.Header
	body        []byte
}

// capture is an http.RoundTripper that records requests and sends none.
type capture struct {
	mu   sync.Mutex
	reqs []captured
}

func (c *capture) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, captured{method: req.Method, url: req.URL.String(), header: req.Header.Clone(), body: body})
	c.mu.Unlock()
	return nil, errDryRun
}

// runDry is --dry-run: read the first batch (batching plain records as a
// run would), have the sink build its requests into a capture transport,
// and print them. Nothing is sent, no ack written, no file touched.
func (c *config) runDry(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) error {
	cap := &capture{}
	c.sink.Transport = cap
	var marks atomic.Int64
	batches := make(chan *ship.Batch, 1)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	readErr := make(chan error, 1)
	go func() { readErr <- c.readBatches(rctx, stdin, stderr, batches, &marks) }()
	b, ok := <-batches
	stop()
	cli.StopReading(stdin, exitcode.ErrStopped)
	for range batches {
	}
	rerr := <-readErr
	if !ok {
		switch {
		case ctx.Err() != nil:
			return nil
		case rerr != nil:
			return rerr
		}
		fmt.Fprintf(stdout, "%s --dry-run: the input holds no record: nothing would be sent\n", prog)
		return nil
	}
	recs := b.Records
	first, last := recs[0].Seq, recs[len(recs)-1].Seq
	fmt.Fprintf(stdout, "%s --dry-run: the first batch, seq %d..%d (%s), as --kind %s would send it; nothing was sent\n",
		prog, first, last, cli.Count(int64(len(recs)), "record", ""), c.kind)
	if c.decl.DryRun != nil {
		return c.decl.DryRun(c.sink, stdout, recs)
	}
	s, err := c.newSink(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Send(ctx, recs); err != nil && !errors.Is(err, errDryRun) && len(cap.reqs) == 0 {
		return fmt.Errorf("dry run: the sink built no request: %w", err)
	}
	cap.mu.Lock()
	defer cap.mu.Unlock()
	for i, r := range cap.reqs {
		fmt.Fprintf(stdout, "\n# request %d of the batch\n", i+1)
		writeRequest(stdout, r)
	}
	if len(cap.reqs) == 1 {
		fmt.Fprintf(stdout, "\n(one request: a run sends this once the SIEM answers; a split batch, a retry or an indexer-ack poll adds requests built the same way)\n")
	}
	return nil
}

// maskQuery masks the values of a URL's query (a HEC URL may carry one,
// and it may hold a secret), but for the channel, which is not one.
func maskQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.RawQuery == "" {
		return raw
	}
	q := u.Query()
	for k := range q {
		if k != "channel" {
			q[k] = []string{"masked"}
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// secretHeaders are the headers whose values are credentials.
var secretHeaders = []string{"Authorization", "Dd-Api-Key", "Proxy-Authorization"}

// writeRequest prints one request: the request line, the headers sorted
// (credentials masked, keeping an Authorization scheme), a blank line and
// the body, gunzipped if it was compressed.
func writeRequest(w io.Writer, r captured) {
	fmt.Fprintf(w, "%s %s\n", r.method, maskQuery(r.url))
	names := make([]string, 0, len(r.header))
	for k := range r.header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range r.header[k] {
			if slices.Contains(secretHeaders, http.CanonicalHeaderKey(k)) {
				scheme, _, ok := strings.Cut(v, " ")
				if ok && k != "Dd-Api-Key" {
					v = scheme + " ******** (masked)"
				} else {
					v = "******** (masked)"
				}
			}
			fmt.Fprintf(w, "%s: %s\n", k, v)
		}
	}
	body := r.body
	note := ""
	if r.header.Get("Content-Encoding") == "gzip" {
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			if d, err := io.ReadAll(zr); err == nil {
				note = fmt.Sprintf("(body: %d bytes gzip-compressed, %d decoded, shown decoded)\n", len(body), len(d))
				body = d
			}
		}
	}
	fmt.Fprintf(w, "\n%s", note)
	w.Write(body)
	if len(body) > 0 && body[len(body)-1] != '\n' {
		io.WriteString(w, "\n")
	}
}
