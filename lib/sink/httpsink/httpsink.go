// Package httpsink is the HTTP client of the HTTP sinks (splunk, elastic,
// datadog): Client owns TLS and the plain-http rule, the credential (re-read
// and the request resent once on 401/403), the status-to-class rule
// (Classify), Retry-After, compressed bodies (Encode) and error text
// scrubbed of secrets. A sink keeps only its encoder and its vendor's own
// answers.
package httpsink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/auditpipe/auditpipe/lib/jsonstr"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// IsLoopback reports whether host (no port) is localhost or a loopback IP:
// the only place a credential may go over plain http without the user
// saying so.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// TLS is the TLS part of a sink's configuration.
type TLS struct {
	CAFile             string // PEM bundle trusted instead of the system roots
	CertFile, KeyFile  string // PEM client certificate and key (both or neither)
	InsecureSkipVerify bool
}

// Config returns the client TLS configuration: TLS 1.2 or later, the CA
// file's roots if given, the client certificate if given. Errors are
// prefixed with name (the sink's name).
func (t TLS) Config(name string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: read CA file: %w", name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: CA file %s holds no PEM certificate", name, t.CAFile)
		}
		c.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New(name + ": a client certificate needs both CertFile and KeyFile")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: load client certificate: %w", name, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// RetryAfter parses a Retry-After header: delay seconds or an HTTP date
// (relative to now). Anything else, or a date in the past, is 0.
func RetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.ParseUint(h, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// AppendJSONString appends s as a JSON string (lib/jsonstr): '"' and '\'
// escaped, control bytes as their short form or \u00xx, every other byte
// (UTF-8 included) as it is. It is how the sinks carry a record line as a
// string, so the store keeps its exact bytes.
func AppendJSONString[T string | []byte](dst []byte, s T) []byte {
	switch v := any(s).(type) {
	case []byte:
		return jsonstr.Append(dst, v)
	case string:
		return jsonstr.AppendString(dst, v)
	}
	panic("unreachable")
}

// MaxMessage is how much of a SIEM's response text an error keeps.
const MaxMessage = 512

// Clean makes a SIEM's response text safe to show: every secret replaced by
// mask (a SIEM may echo the credential it refused), control characters as
// spaces, trimmed, and cut to MaxMessage bytes at a rune boundary.
func Clean(text string, secrets []string, mask string) string {
	for _, t := range secrets {
		if t != "" {
			text = strings.ReplaceAll(text, t, mask)
		}
	}
	text = strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, strings.TrimSpace(text))
	if len(text) > MaxMessage {
		cut := MaxMessage
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	return text
}

// Reply is what RoundTrip read of an answer.
type Reply struct {
	Status    int
	Header    http.Header
	Body      []byte // at most the limit given to RoundTrip
	Truncated bool   // the body was longer than the limit
	// Sent is how many bytes of the request body (as sent: compressed if
	// it was) the transport had taken when the answer came, of Size. A
	// server that read the whole body cannot answer before Sent == Size;
	// an answer that came sooner was sent without reading the records
	// (a proxy, a load balancer's error page) and proves nothing.
	Sent, Size int64
	// Secrets are the secrets the request (and, after a refresh, the one
	// before it) carried: no message may show them.
	Secrets []string
	// RefreshErr is why re-reading the secret after a 401/403 failed.
	RefreshErr error
}

// BodySent reports whether the whole request body had been handed to the
// transport when the answer came (see Reply.Sent).
func (r *Reply) BodySent() bool { return r.Sent >= r.Size }

// NotSuccess says why r, a 2xx answer, falls short of a success answer on
// what every SIEM's shares: the whole request body sent before it came,
// the status want (who, "HEC", answers it), a body. "" if it has these;
// "early" for an answer that came too soon (Unexpected words it).
func (r *Reply) NotSuccess(who string, want int) string {
	switch {
	case !r.BodySent():
		return "early"
	case r.Status != want:
		return fmt.Sprintf("%s answers %d, not %d", who, want, r.Status)
	case len(r.Body) == 0:
		return "an empty body"
	}
	return ""
}

// maxShown is how many bytes of an unexpected answer's body a message
// shows.
const maxShown = 200

// Describe names what answered, for a message: its status, its
// Content-Type and its body's first bytes, scrubbed of secrets (mask
// replaces them) and quoted: `HTTP 200, Content-Type "text/html", 57-byte
// body "<html>…"`.
func (r *Reply) Describe(secrets []string, mask string) string {
	s := "HTTP " + strconv.Itoa(r.Status)
	if ct := r.Header.Get("Content-Type"); ct != "" {
		s += ", Content-Type " + strconv.Quote(ct)
	} else {
		s += ", no Content-Type"
	}
	switch {
	case len(r.Body) == 0:
		return s + ", empty body"
	case r.Truncated:
		s += fmt.Sprintf(", body of more than %d bytes", len(r.Body))
	default:
		s += fmt.Sprintf(", %d-byte body", len(r.Body))
	}
	text := Clean(string(r.Body), secrets, mask)
	if len(text) > maxShown {
		cut := maxShown
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	return s + " " + strconv.Quote(text)
}

// Unexpected is the failure for an answer that is not the SIEM's
// documented success answer although its status may say success: no
// record counts as delivered, and it is Retryable (what answered may be a
// proxy that recovers, or the SIEM behind it once the path is fixed).
// vendor names the SIEM ("HEC"), success its success answer (`200
// {"code":0,...}`), why what is wrong with this one. An answer that came
// before the request body was sent in full is named as such whatever it
// says.
func Unexpected(r *Reply, vendor, success, why string, secrets []string, mask string) *sink.Error {
	if !r.BodySent() {
		why = fmt.Sprintf("it came before the request body was sent in full (%d of %d bytes), so whatever answered did not read the records", r.Sent, r.Size)
	}
	return &sink.Error{Class: sink.Retryable, HTTPStatus: r.Status, Code: -1, Msg: fmt.Sprintf(
		"not %s's success answer (%s): %s; so no record counts as delivered. What answered: %s. "+
			"If this persists, something other than %s answers at this URL (a proxy, a load balancer, a login page): check the URL and the path to it",
		vendor, success, why, r.Describe(secrets, mask), vendor)}
}

// RoundTrip sends req with client and reads at most limit bytes of the
// answer's body, then drains up to 4*limit more so the connection can be
// reused. req must carry a context with the request's timeout (timeout is
// only named in the message). A transport failure comes back as an error
// whose text names the method and the endpoint without its query (which a
// url.Error would print whole) and the cause, or says that no complete
// response came within timeout; callers scrub it of secrets and make it a
// retryable failure.
func RoundTrip(client *http.Client, req *http.Request, limit int, timeout time.Duration) (Reply, error) {
	var r Reply
	var tb *trackedBody
	if req.Body != nil && req.Body != http.NoBody {
		tb, _ = req.Body.(*trackedBody)
	}
	resp, err := client.Do(req)
	if tb != nil {
		r.Sent, r.Size = tb.t.sent.Load(), int64(len(tb.t.data))
	}
	if err == nil {
		r.Body, err = io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
		if len(r.Body) > limit {
			r.Body, r.Truncated = r.Body[:limit], true
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4*int64(limit)))
		resp.Body.Close()
	}
	if err != nil {
		where, _, _ := strings.Cut(req.URL.String(), "?")
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return r, fmt.Errorf("%s %s: no complete response within %s", req.Method, where, timeout)
		}
		return r, fmt.Errorf("%s %s: %v%s", req.Method, where, err, Advice(err))
	}
	r.Status, r.Header = resp.StatusCode, resp.Header
	return r, nil
}

// Advice is what to do about a transport error, in the words of
// audit-ship's flags, or "" when there is nothing to add: an unknown
// certificate authority needs --ca-file, a certificate for another name
// another URL, an unresolvable name a check of the host name.
func Advice(err error) string {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &ua):
		return " (the SIEM's certificate is signed by an authority this host does not trust: give that CA's PEM bundle with --ca-file, or install it in the system roots)"
	case errors.As(err, &he):
		return " (the SIEM's certificate is not for this host name: use the name the certificate is for in the URL)"
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return " (the SIEM's certificate has expired or is not valid yet: check the SIEM's certificate and this host's clock)"
	case errors.As(err, &dns):
		return " (the host name does not resolve: check the URL's host name and this host's DNS)"
	case errors.As(err, &op) && op.Op == "dial":
		return " (nothing accepts connections there: check the URL's host and port, the firewall and HTTPS_PROXY/NO_PROXY)"
	}
	return ""
}

// Explain joins what the sink concluded (explain) and what the SIEM said
// (text, already cleaned of secrets; quoted here): "explain: VENDOR said
// "text"", or whichever of the two is not empty.
func Explain(explain, vendor, text string) string {
	switch {
	case text == "":
		return explain
	case explain == "":
		return strconv.Quote(text)
	}
	return explain + ": " + vendor + " said " + strconv.Quote(text)
}

// RefreshNote ends the advice for a refused credential: that it was
// re-read after the refusal (so the one shown is current), or why
// re-reading it failed.
func RefreshNote(refreshErr error) string {
	if refreshErr != nil {
		return "; re-reading it failed: " + refreshErr.Error()
	}
	return " (re-read after the refusal)"
}

// NewRequest builds a request to u with auditpipe's User-Agent, carrying
// data (no body if nil) as contentType, marked gzip-encoded if gz.
//
// The body counts the bytes the transport takes from it, so RoundTrip can
// tell an answer that came before the whole body was sent (Reply.Sent).
func NewRequest(ctx context.Context, method, u string, data []byte, gz bool, contentType string) (*http.Request, error) {
	return newRequest(ctx, method, u, Body{Data: data, Gzip: gz}, contentType)
}

// newRequest is NewRequest for body: a request body made of pooled memory
// (Encode's) holds a reference to it until the transport closes it.
func newRequest(ctx context.Context, method, u string, body Body, contentType string) (*http.Request, error) {
	data, gz := body.Data, body.Gzip
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	if len(data) > 0 {
		t := &tracker{data: data, buf: body.buf, gen: body.gen}
		req.ContentLength = int64(len(data))
		req.Body = t.body()
		req.GetBody = func() (io.ReadCloser, error) { return t.body(), nil }
	} else if data != nil {
		req.Body = http.NoBody
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	}
	if data != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	req.Header.Set("User-Agent", "auditpipe")
	return req, nil
}

// tracker is a request body and how many of its bytes the transport took
// (of its latest copy: a transport that resends the request asks for a
// new copy, GetBody, which starts the count again).
//
// When data is pooled memory (buf), each copy holds a reference to it from
// its making to its Close, and each Read another for its duration: the
// memory is pooled again only after the transport closed every copy and
// no Read is running (Body.Release).
type tracker struct {
	data []byte
	buf  *bodyBuf
	gen  uint64 // buf's generation data belongs to
	sent atomic.Int64
}

func (t *tracker) body() io.ReadCloser {
	t.sent.Store(0)
	b := &trackedBody{t: t, r: bytes.NewReader(t.data)}
	if t.buf != nil && !t.buf.tryRef(t.gen) {
		b.released = true // the transport asked for a copy after Release: reads fail
	}
	return b
}

type trackedBody struct {
	t        *tracker
	r        *bytes.Reader
	closed   atomic.Bool
	released bool // made after the memory was released: holds no reference
}

func (b *trackedBody) Read(p []byte) (int, error) {
	if buf := b.t.buf; buf != nil {
		// A read holds a reference while it copies, and reads nothing
		// once this copy is closed (its own reference may be the one
		// that kept the memory).
		if b.released || !buf.tryRef(b.t.gen) {
			return 0, errBodyReleased
		}
		defer buf.unref()
		if b.closed.Load() {
			return 0, errBodyReleased
		}
	}
	n, err := b.r.Read(p)
	b.t.sent.Add(int64(n))
	return n, err
}

func (b *trackedBody) Close() error {
	if b.closed.CompareAndSwap(false, true) && b.t.buf != nil && !b.released {
		b.t.buf.unref()
	}
	return nil
}

// ParseURL checks a SIEM URL the way every sink does: it parses, its
// scheme is https or http, it has a host, it carries no credentials
// (credHint says where they go instead) and, unless allowQuery, no query
// (not echoed: a query may hold a secret). The fragment and the raw path
// are dropped. prefix ("splunk") starts every error.
func ParseURL(prefix, raw, credHint string, allowQuery bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: bad URL: %w", prefix, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("%s: URL %s: scheme must be https (or http)", prefix, u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s: URL %s has no host", prefix, u.Redacted())
	}
	if strings.HasSuffix(u.Host, ":") {
		return nil, fmt.Errorf("%s: URL %s has no port after the ':': give the port (e.g. %s8088) or drop the ':' for the scheme's default", prefix, u.Redacted(), u.Host)
	}
	if u.Port() == "0" {
		return nil, fmt.Errorf("%s: URL %s: port 0 is not a port to connect to", prefix, u.Redacted())
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s: URL %s carries credentials: %s", prefix, u.Redacted(), credHint)
	}
	if !allowQuery && (u.RawQuery != "" || u.ForceQuery) {
		return nil, fmt.Errorf("%s: URL %s://%s%s has a query (not shown: it may hold a secret): give the base URL only", prefix, u.Scheme, u.Host, u.EscapedPath())
	}
	u.Fragment, u.RawFragment = "", ""
	u.RawPath = ""
	return u, nil
}

// VictoriaLogs drops a log entry whose estimated size (field names and
// values) is over VictoriaLogsMaxEntry, a fixed limit (v1.52; see its FAQ,
// "What length a log record is expected to have"), with only a warning in
// its own log, and still answers success for the request. A sink that
// writes to VictoriaLogs must therefore not send such a record at all: it
// is "too large" (quarantined), never acked as stored.
const VictoriaLogsMaxEntry = 2 << 20

// VictoriaLogsOverhead is what a sink adds to a record line in a
// VictoriaLogs entry (the other fields and the field names), with room to
// spare: a line over VictoriaLogsMaxEntry-VictoriaLogsOverhead is not sent
// to VictoriaLogs.
const VictoriaLogsOverhead = 16 << 10

// IsVictoriaLogs reports whether an answer came from VictoriaLogs: every
// VictoriaMetrics component sets X-Server-Hostname (Splunk, Elasticsearch
// and Datadog do not).
func IsVictoriaLogs(h http.Header) bool { return h.Get("X-Server-Hostname") != "" }

// Store remembers what answers at a sink's URL, learnt from the answers
// (Saw): VictoriaLogs once any answer came from it (for good: a proxy's
// own error page in between changes nothing), another store once a 2xx
// answer came without its header. Safe for concurrent use.
type Store struct{ v atomic.Int32 }

// Saw notes an answer from the sink's URL.
func (s *Store) Saw(status int, h http.Header) {
	switch {
	case h == nil:
	case IsVictoriaLogs(h):
		s.v.Store(1)
	case status/100 == 2:
		s.v.CompareAndSwap(0, 2)
	}
}

// Known reports whether an answer was seen, and if so whether it came
// from VictoriaLogs.
func (s *Store) Known() (known, victoriaLogs bool) {
	v := s.v.Load()
	return v != 0, v == 1
}

// OverVictoriaLogs returns the positions of the records whose line is too
// large for a VictoriaLogs entry, nil if none.
func OverVictoriaLogs(records []sink.Record) []int {
	var over []int
	for i := range records {
		if len(records[i].Line) > VictoriaLogsMaxEntry-VictoriaLogsOverhead {
			over = append(over, i)
		}
	}
	return over
}

// VictoriaLogsReason is the Reason of a record not sent to VictoriaLogs
// for its size.
func VictoriaLogsReason(n int) string {
	return sink.NotSentReason(fmt.Sprintf("record line is %d bytes: VictoriaLogs drops a log entry over %d bytes "+
		"and still answers success, so it was not sent", n, VictoriaLogsMaxEntry))
}

// SendWithout sends the records of records not at positions over with
// send, marks those at over Poison with reason(i), and returns the results
// in records' order. over is sorted.
func SendWithout(ctx context.Context, records []sink.Record, over []int, reason func(i int) string,
	send func(context.Context, []sink.Record) (sink.Result, error)) (sink.Result, error) {
	res := sink.NewResult(len(records))
	keep := make([]sink.Record, 0, len(records)-len(over))
	pos := make([]int, 0, cap(keep))
	k := 0
	for i := range records {
		if k < len(over) && over[k] == i {
			res.Status[i], res.Reason[i] = sink.Poison, reason(i)
			k++
			continue
		}
		keep = append(keep, records[i])
		pos = append(pos, i)
	}
	if len(keep) == 0 {
		return res, nil
	}
	r, err := send(ctx, keep)
	for j, i := range pos {
		if j < len(r.Status) {
			res.Status[i] = r.Status[j]
			res.Reason[i] = r.Reason[j]
		}
	}
	return res, err
}

// SendKeepingVictoriaLogs is the Send of a sink whose store may be
// VictoriaLogs: records over its entry limit are not sent but set aside as
// Poison, too large (it would drop them and answer success), when
// VictoriaLogs answers at the sink's URL: known from earlier answers, or
// learnt from the answer to probe, which is sent only when such a record
// is in the batch. Everything else goes to send.
func (c *Client) SendKeepingVictoriaLogs(ctx context.Context, records []sink.Record, probe Request,
	send func(context.Context, []sink.Record) (sink.Result, error)) (sink.Result, error) {
	if len(records) == 0 {
		return sink.NewResult(0), nil
	}
	if c.Closed() {
		return sink.NewResult(len(records)), c.cfg.Closed
	}
	return SendKeepingVictoriaLogs(ctx, records, func(ctx context.Context) (bool, error) {
		if known, vl := c.Store.Known(); known {
			return vl, nil
		}
		if _, err := c.Do(ctx, probe); err != nil {
			return false, err
		}
		_, vl := c.Store.Known()
		return vl, nil
	}, send)
}

// SendKeepingVictoriaLogs is Client.SendKeepingVictoriaLogs with
// isVictoriaLogs saying whether VictoriaLogs answers.
func SendKeepingVictoriaLogs(ctx context.Context, records []sink.Record, isVictoriaLogs func(context.Context) (bool, error),
	send func(context.Context, []sink.Record) (sink.Result, error)) (sink.Result, error) {
	if over := OverVictoriaLogs(records); over != nil {
		vl, err := isVictoriaLogs(ctx)
		if err != nil {
			return sink.NewResult(len(records)), err
		}
		if vl {
			return SendWithout(ctx, records, over, func(i int) string {
				return VictoriaLogsReason(len(records[i].Line))
			}, send)
		}
	}
	return send(ctx, records)
}
