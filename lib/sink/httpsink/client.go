package httpsink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// Classify is the status-to-class rule every HTTP sink applies to an answer
// its vendor's own rules (HEC codes, bulk items, Datadog answers) left open:
//
//	408, 429, 5xx         Retryable: back off (Retry-After) and resend
//	400                   on400: BadRequest where the SIEM judges a request's records
//	                      as a whole (bisect), Config where it answers per record
//	anything else         Config: 3xx, 404, 401/403 after a re-read secret, other 4xx
//
// 413 is TooLarge only for a request that carries records (Client.TooLarge).
func Classify(status int, on400 sink.Class) sink.Class {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return sink.Retryable
	case status == http.StatusBadRequest:
		return on400
	}
	return sink.Config
}

// Auth is how a Client's requests carry a credential.
type Auth struct {
	// Source is the secret; nil: requests carry no credential.
	Source *secret.Source
	// What names the secret in messages ("HEC token").
	What string
	// Set puts the secret v on a request's header and returns the strings
	// no message may show (v and what it was made into).
	Set func(h http.Header, v string) (scrub []string)
}

// ClientConfig configures a Client.
type ClientConfig struct {
	Name   string // the sink ("splunk"): starts its own errors
	Vendor string // the SIEM in messages ("HEC", "Elasticsearch")
	Mask   string // what replaces a secret in text shown ("[token]")
	// URL is the endpoint the user gave (nil: the vendor's own https
	// host). Plain http carries Sends ("the HEC token") only to a loopback
	// host or with AllowInsecureHTTP, and takes no TLS options.
	URL               *url.URL
	Sends             string
	TLS               TLS
	AllowInsecureHTTP bool
	Auth              Auth
	On400             sink.Class // what a 400 means at this SIEM (see Classify)
	// Redirect names what a followed redirect would carry along ("the token").
	Redirect string
	// Text returns the useful text of an answer's body (nil: the body).
	Text         func(body []byte) string
	Timeout      time.Duration // per request, sending to reading the answer
	MaxIdleConns int
	Transport    http.RoundTripper // carries the requests instead of our own (--dry-run)
	Closed       error             // what requests return after Close
}

// Client is an HTTP sink's connection to its SIEM: TLS and the plain-http
// rule, one request's round trip with the credential re-read and the
// request resent once on 401/403, the status rule (Classify), Retry-After,
// and error text scrubbed of every secret sent. It is safe for concurrent
// use.
type Client struct {
	cfg       ClientConfig
	NotFound  string // the advice for a 404 (set by the sink after NewClient)
	Store     Store  // VictoriaLogs or not, from the answers' headers
	transport *http.Transport
	http      *http.Client
	closed    atomic.Bool
}

// NewClient checks the transport settings of cfg and returns a Client.
// It reads the TLS files; it contacts nobody.
func NewClient(cfg ClientConfig) (*Client, error) {
	if u := cfg.URL; u != nil && u.Scheme == "http" {
		if cfg.TLS != (TLS{}) {
			return nil, fmt.Errorf("%s: TLS options are set but URL %s is plain http", cfg.Name, u.Redacted())
		}
		if !cfg.AllowInsecureHTTP && !IsLoopback(u.Hostname()) {
			return nil, fmt.Errorf("%s: refusing to send %s over plain http to %s: "+
				"use https, or allow it explicitly with --allow-insecure-http", cfg.Name, cfg.Sends, u.Host)
		}
	}
	tlsConf, err := cfg.TLS.Config(cfg.Name)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone() // keeps dial timeouts and HTTP/2
	tr.Proxy = http.ProxyFromEnvironment
	tr.TLSClientConfig = tlsConf
	tr.MaxIdleConns = cfg.MaxIdleConns
	tr.MaxIdleConnsPerHost = cfg.MaxIdleConns
	tr.IdleConnTimeout = 30 * time.Second // below common load balancer idle timeouts
	var rt http.RoundTripper = tr
	if cfg.Transport != nil {
		rt = cfg.Transport
	}
	if cfg.Closed == nil {
		cfg.Closed = errors.New(cfg.Name + ": sink is closed")
	}
	return &Client{cfg: cfg, transport: tr, http: &http.Client{
		Transport: rt,
		// Redirects are not followed: the credential would go along.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// Close releases idle connections; requests fail with Closed afterwards
// (those in flight finish).
func (c *Client) Close() error {
	c.closed.Store(true)
	c.transport.CloseIdleConnections()
	return nil
}

// Closed reports whether Close was called.
func (c *Client) Closed() bool { return c.closed.Load() }

// Request is one request a Client sends.
type Request struct {
	Method, URL string
	Body        Body   // Data nil: no body
	ContentType string // of the body
	Limit       int    // answer body bytes read (0: 64 KiB)
	NoAuth      bool   // sent without the credential (a health check)
	Header      func(http.Header)
}

// Do sends q with the credential and, on 401/403, re-reads the secret and,
// if it changed, sends q once more with the new one. It compares the
// secret it sent with the current one rather than trusting Refresh's
// changed, so concurrent requests that all failed with the old secret all
// retry. A failed re-read is kept in Reply.RefreshErr. A transport failure
// comes back as a Retryable *sink.Error, or as ctx.Err() when ctx is done.
func (c *Client) Do(ctx context.Context, q Request) (*Reply, error) {
	src := c.cfg.Auth.Source
	if q.NoAuth || src == nil {
		return c.send(ctx, q, "", false)
	}
	v, err := c.secret(ctx)
	if err != nil {
		return nil, err
	}
	r, err := c.send(ctx, q, v, true)
	if err != nil || (r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden) {
		return r, err
	}
	if _, err := src.Refresh(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.RefreshErr = err
		return r, nil
	}
	cur, err := c.secret(ctx)
	if err != nil {
		return nil, err
	}
	if cur == v {
		return r, nil
	}
	r2, err := c.send(ctx, q, cur, true)
	if err != nil {
		return nil, err
	}
	r2.Secrets = append(r2.Secrets, r.Secrets...)
	return r2, nil
}

// secret reads the current secret, checked for use in a header.
func (c *Client) secret(ctx context.Context) (string, error) {
	a := c.cfg.Auth
	v, err := a.Source.Get(ctx)
	if err != nil {
		return "", &sink.Error{Class: sink.Config, Code: -1, Msg: "read " + a.What + ": " + err.Error()}
	}
	for _, ch := range v {
		if ch < 0x20 || ch == 0x7f {
			return "", &sink.Error{Class: sink.Config, Code: -1, Msg: "the " + a.What + " from " + a.Source.String() +
				" contains a control character (a line break inside the value?)"}
		}
	}
	return v, nil
}

// send sends one request, with the secret v if auth, and reads the answer.
func (c *Client) send(ctx context.Context, q Request, v string, auth bool) (*Reply, error) {
	if c.closed.Load() {
		return nil, c.cfg.Closed
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := newRequest(rctx, q.Method, q.URL, q.Body, q.ContentType)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", c.cfg.Name, err)
	}
	var scrub []string
	if auth {
		scrub = c.cfg.Auth.Set(req.Header, v)
	}
	if q.Header != nil {
		q.Header(req.Header)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 64 << 10
	}
	r, err := RoundTrip(c.http, req, limit, c.cfg.Timeout)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &sink.Error{Class: sink.Retryable, Code: -1, Msg: Clean(err.Error(), scrub, c.cfg.Mask)}
	}
	r.Secrets = scrub
	c.Store.Saw(r.Status, r.Header)
	return &r, nil
}

// Clean is text scrubbed of the secrets r was sent with (see Clean).
func (c *Client) Clean(r *Reply, text string) string { return Clean(text, r.Secrets, c.cfg.Mask) }

// Error is a failure of class for r: explain, then the SIEM's own text
// (scrubbed and quoted).
func (c *Client) Error(r *Reply, class sink.Class, explain string) *sink.Error {
	text := string(r.Body)
	if c.cfg.Text != nil {
		text = c.cfg.Text(r.Body)
	}
	return &sink.Error{Class: class, HTTPStatus: r.Status, Code: -1, Msg: Explain(explain, c.cfg.Vendor, c.Clean(r, text))}
}

// Fail is the failure for an answer the sink's vendor rules left open,
// classed by Classify, with Retry-After and advice for a redirect or a
// 404.
func (c *Client) Fail(r *Reply) *sink.Error {
	class := Classify(r.Status, c.cfg.On400)
	explain := ""
	switch {
	case class == sink.Retryable:
		e := c.Error(r, class, "")
		e.RetryAfter = RetryAfter(r.Header.Get("Retry-After"), time.Now())
		return e
	case r.Status/100 == 3:
		loc := r.Header.Get("Location")
		if u, err := url.Parse(loc); err == nil {
			loc = u.Redacted()
		}
		explain = fmt.Sprintf("redirected to %q: redirects are not followed (%s would go along); set URL to the final endpoint", loc, c.cfg.Redirect)
	case r.Status == http.StatusNotFound:
		explain = c.NotFound
	}
	return c.Error(r, class, explain)
}

// TooLarge is the failure for a 413 to a request that carried records in b.
func (c *Client) TooLarge(r *Reply, b Body, what string) *sink.Error {
	return c.Error(r, sink.TooLarge, fmt.Sprintf("%s of %d bytes (%d uncompressed) too large", what, len(b.Data), b.Raw))
}

// Unexpected is Unexpected for r from the API vendor, scrubbed of r's secrets.
func (c *Client) Unexpected(r *Reply, vendor, success, why string) *sink.Error {
	return Unexpected(r, vendor, success, why, r.Secrets, c.cfg.Mask)
}
