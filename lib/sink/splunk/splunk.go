// Package splunk is the sink for the Splunk HTTP Event Collector (HEC)
// event endpoint, and for stores that speak its protocol (VictoriaLogs).
//
// # Events
//
// Each record becomes one HEC event whose "event" is the whole record line
// as a JSON string, so Splunk's _raw (and VictoriaLogs' _msg) holds the exact
// bytes of the line, and a chain re-verification from a search export takes
// the fast path:
//
//	{"time":1764244800.123,"host":"h","source":"s","sourcetype":"declaragent:audit",
//	 "index":"i","event":"{\"seq\":42,…}","fields":{"seq":"42","tenantId":"acme",
//	 "kind":"tool_call","recordHash":"…"}}
//
// time is the record's ts in seconds with exactly three decimals (left out
// when ts <= 0: HEC then stamps the arrival time). Empty source and index
// are left out (HEC applies the token's defaults). The indexed fields make
// seq, tenantId, kind and recordHash searchable without parsing _raw
// (index=… recordHash=…), which is also how duplicates are found. Events
// are separated by "\n" and, with Config.Gzip, compressed at level 1.
//
// # Outcomes
//
//   - 200 with HEC's success answer, a JSON object with "code" 0: every
//     record Delivered. Any other 2xx answer (not JSON, empty, no code or
//     another code, 204, ...) or one that came before the request body was
//     sent in full delivers nothing: Retryable, naming what answered
//     (httpsink.Unexpected). With IndexerAck, only once the ack poll
//     reports the request's ackId indexed; if it does not within
//     AckTimeout, a Retryable error and nothing is delivered (the batch is
//     resent: duplicates, not loss).
//   - 400 with code 6, 12, 13 or 15 and invalid-event-number N: record N is
//     Poison (Reason: the HEC text and code), records after it Pending,
//     records before it Delivered, and the error is nil: the shipper
//     resends the Pending ones. HEC is believed to index the events before
//     a bad one (unconfirmed); without IndexerAck a 200 promises no more
//     than "received and valid" either, so Delivered has the same meaning.
//     With IndexerAck the records before N stay Pending instead, since no
//     ack will ever confirm them: at worst they are duplicated.
//   - 400 code 7 (incorrect index): Config, naming the index (with
//     Config.IndexFor, the index of the event HEC names in
//     invalid-event-number, or every index of the request).
//   - 400 codes 10, 11 (channel missing or invalid) and 14 (ack disabled):
//     Config, because resending cannot help: the token's indexer
//     acknowledgement setting and Config.IndexerAck disagree.
//   - Other 400s (5, a bad code without a usable position): BadRequest,
//     and the shipper bisects to find the poison record.
//   - 401 (codes 2, 3) and 403 (codes 1, 4): the token is re-resolved
//     (Token.Refresh); if it changed, the request is sent again at once
//     with the new token, so a token rotated in its file needs no restart.
//     Otherwise Config.
//   - 413: TooLarge. 408, 429, 5xx, network errors and timeouts:
//     Retryable, with RetryAfter from a Retry-After header (seconds or an
//     HTTP date). Other statuses (3xx, 404, other 4xx): Config.
//   - A cancelled ctx is returned as it is (ctx.Err()).
//   - VictoriaLogs drops an entry over 2 MiB and still answers success: to
//     a server that answers as VictoriaLogs (its X-Server-Hostname header,
//     learnt from any answer, or from a health check before the first
//     request holding such a record), a record line over
//     httpsink.VictoriaLogsMaxEntry-VictoriaLogsOverhead is not sent but
//     Poison with a sink.TooLargeReason; the rest of the request goes.
//
// No error ever contains the token: the response text is cut to 512 bytes
// and any occurrence of the token in it is replaced.
//
// # Transport
//
// HTTPS with TLS 1.2 or later; CAFile replaces the system roots (the file
// is then the only trust anchor, as with curl --cacert); CertFile and
// KeyFile give a client certificate. Plain http:// is refused, because the
// token would cross the network in clear, except to a loopback host
// (localhost, 127.0.0.0/8, ::1), where tests and a local VictoriaLogs
// listen, or with AllowInsecureHTTP. HTTPS_PROXY, HTTP_PROXY and NO_PROXY
// are honoured. Redirects are not followed (the token must not follow one):
// a 3xx is a Config error naming the target.
//
// # Indexer acknowledgement
//
// With IndexerAck, every request carries X-Splunk-Request-Channel, and Send
// polls /services/collector/ack for its ackId every AckPoll until it is
// true or AckTimeout passes. Behind a load balancer, acks are kept per
// indexer: the load balancer must route a channel's polls to the indexer
// that took its events (sticky sessions, e.g. on the channel header or a
// cookie); without that, polls answer false until AckTimeout and every
// batch is resent, producing endless duplicates. Splunk Cloud offers
// indexer acknowledgement only for Firehose.
//
// # Check
//
// Check asks GET /services/collector/health (no token), then POSTs an empty
// body with the token: HEC answers 400 code 5 "No data" to a valid token
// and 401/403 to a bad one, so the token is checked without writing
// anything. With IndexerAck it also polls the ack endpoint with no ids,
// which fails with code 14 when the token has acknowledgement disabled.
// The index is not checked (that would take a real event).
package splunk

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultPath         = "/services/collector/event"
	DefaultSourcetype   = "declaragent:audit"
	DefaultTimeout      = 30 * time.Second
	DefaultAckTimeout   = 2 * time.Minute
	DefaultAckPoll      = time.Second
	DefaultMaxIdleConns = 16
)

// Config configures a Sink. Zero fields take the defaults above.
type Config struct {
	// URL is the event endpoint, e.g.
	// https://splunk.example.com:8088/services/collector/event. A URL with
	// no path gets DefaultPath. The path may carry a prefix before
	// /services/collector (a reverse proxy, or /insert/splunk for
	// VictoriaLogs); the ack and health endpoints are found beside it.
	URL string
	// Token is the HEC token (sent as "Authorization: Splunk <token>").
	// Required. It is re-resolved after a 401/403.
	Token *secret.Source
	// Index, Source, Sourcetype and Host are the event metadata. Empty
	// Index and Source are left out (the token's defaults apply);
	// Sourcetype defaults to DefaultSourcetype, Host to os.Hostname().
	Index      string
	Source     string
	Sourcetype string
	Host       string
	// IndexFor, if set, routes each record to its own index (per tenant,
	// per day: see lib/route) and Index is not used; "" leaves the event
	// without an index (the token's default). It must be safe for
	// concurrent use and fast (it is called for every record, on every
	// attempt). The name is JSON-escaped into the event, so no name can
	// alter the request; lib/route keeps it a valid Splunk index name.
	IndexFor func(*sink.Record) string
	// Gzip compresses request bodies (level 1). Callers should default it
	// to true: audit lines compress about 5:1.
	Gzip bool
	// IndexerAck waits for Splunk's indexer acknowledgement before
	// reporting records Delivered: every AckPoll (default 1s), up to
	// AckTimeout (default 2m). See the package comment about load
	// balancers.
	IndexerAck bool
	AckTimeout time.Duration
	AckPoll    time.Duration
	// Channel is the X-Splunk-Request-Channel GUID. With IndexerAck and no
	// Channel, New generates a random one. Without IndexerAck it is sent
	// when set (some tokens require a channel).
	Channel string
	// CAFile is a PEM bundle of the CAs to trust instead of the system
	// roots. CertFile and KeyFile are a PEM client certificate and key
	// (both or neither).
	CAFile   string
	CertFile string
	KeyFile  string
	// InsecureSkipVerify turns off verification of the server certificate.
	// DANGEROUS: anyone on the path can then read the token and the audit
	// log, and forge acknowledgements. For a lab only; use CAFile instead.
	InsecureSkipVerify bool
	// AllowInsecureHTTP allows a plain http:// URL to a non-loopback host,
	// sending the token and the audit log unencrypted.
	AllowInsecureHTTP bool
	// Timeout bounds each HTTP request, from sending to reading the
	// response (default 30s). Ack polling is bounded by AckTimeout.
	Timeout time.Duration
	// MaxIdleConns is how many idle connections to keep to the endpoint,
	// at least the number of requests the shipper keeps in flight
	// (default 16).
	MaxIdleConns int
	// Transport, if set, carries the requests instead of the sink's own
	// (audit-ship --dry-run captures them there; nothing is sent).
	Transport http.RoundTripper
}

// ErrClosed is returned by Send and Check after Close.
var ErrClosed = errors.New("splunk: sink is closed")

// Sink sends records to one HEC endpoint. It is safe for concurrent use.
type Sink struct {
	cfg       Config
	eventURL  string
	ackURL    string
	healthURL string
	display   string // the endpoint for messages: scheme://host/path
	meta      []byte // the constant part of every event
	transport *http.Transport
	client    *http.Client
	closed    atomic.Bool
	store     httpsink.Store // VictoriaLogs or not, from the answers' headers
}

var _ sink.Sink = (*Sink)(nil)

// New checks cfg, applies defaults and returns a Sink. It reads the TLS
// files; it does not contact the server (see Check).
func New(cfg Config) (*Sink, error) {
	if cfg.Token == nil {
		return nil, errors.New("splunk: no token: give a secret reference (env:NAME or file:PATH)")
	}
	u, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "http" {
		if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" || cfg.InsecureSkipVerify {
			return nil, fmt.Errorf("splunk: TLS options are set but URL %s is plain http", u.Redacted())
		}
		if !cfg.AllowInsecureHTTP && !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("splunk: refusing to send the HEC token over plain http to %s: "+
				"use https, or allow it explicitly with --allow-insecure-http", u.Host)
		}
	}
	if cfg.Sourcetype == "" {
		cfg.Sourcetype = DefaultSourcetype
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname() // left out of events if unknown
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	if cfg.AckPoll <= 0 {
		cfg.AckPoll = DefaultAckPoll
	}
	if cfg.MaxIdleConns <= 0 {
		cfg.MaxIdleConns = DefaultMaxIdleConns
	}
	if cfg.Channel == "" && cfg.IndexerAck {
		cfg.Channel = newUUID()
	}
	if cfg.Channel != "" && !guidRE.MatchString(cfg.Channel) {
		return nil, fmt.Errorf("splunk: channel %q is not a GUID (like 0f8d6c2e-3c1a-4f7e-9b1d-2a5e8c7d9f10)", cfg.Channel)
	}
	tlsConf, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}

	tr := http.DefaultTransport.(*http.Transport).Clone() // keeps ProxyFromEnvironment and dial timeouts
	tr.Proxy = http.ProxyFromEnvironment
	tr.TLSClientConfig = tlsConf
	tr.MaxIdleConns = cfg.MaxIdleConns
	tr.MaxIdleConnsPerHost = cfg.MaxIdleConns
	tr.IdleConnTimeout = 30 * time.Second // below common load balancer idle timeouts

	s := &Sink{
		cfg:       cfg,
		eventURL:  u.String(),
		ackURL:    sibling(u, "/services/collector/ack", "channel="+cfg.Channel),
		healthURL: sibling(u, "/services/collector/health", ""),
		display:   u.Scheme + "://" + u.Host + u.Path,
		meta:      appendMeta(nil, cfg.Host, cfg.Source, cfg.Sourcetype, staticIndex(cfg)),
		transport: tr,
		client: &http.Client{
			Transport: roundTripper(tr, cfg.Transport),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	if cfg.Channel == "" {
		s.ackURL = sibling(u, "/services/collector/ack", "")
	}
	return s, nil
}

// staticIndex is the index written into meta: none when it is routed.
func staticIndex(cfg Config) string {
	if cfg.IndexFor != nil {
		return ""
	}
	return cfg.Index
}

// Channel returns the channel GUID in use ("" when none is sent).
func (s *Sink) Channel() string { return s.cfg.Channel }

// Close releases idle connections. Send and Check fail with ErrClosed
// afterwards; requests in flight finish.
func (s *Sink) Close() error {
	s.closed.Store(true)
	s.transport.CloseIdleConnections()
	return nil
}

// collectorSuffixes are the HEC event endpoint paths, longest first.
var collectorSuffixes = []string{"/services/collector/event/1.0", "/services/collector/event", "/services/collector"}

// parseURL checks the endpoint URL and fills in the default path. The
// returned URL's Path ends in one of collectorSuffixes.
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("splunk: no URL (e.g. https://splunk.example.com:8088)")
	}
	u, err := httpsink.ParseURL("splunk", raw, "HEC takes only the token", true)
	if err != nil {
		return nil, err
	}
	p := strings.TrimRight(u.Path, "/")
	if p == "" {
		p = DefaultPath
	}
	if strings.HasSuffix(p, "/services/collector/raw") || strings.Contains(p, "/services/collector/raw/") {
		return nil, fmt.Errorf("splunk: URL path %s is the raw endpoint, which takes a different body: use %s", p, DefaultPath)
	}
	ok := false
	for _, suf := range collectorSuffixes {
		if strings.HasSuffix(p, suf) {
			ok = true
			break
		}
	}
	if !ok {
		return nil, fmt.Errorf("splunk: URL path %s is not a HEC event endpoint (want …%s)", p, DefaultPath)
	}
	u.Path = p
	return u, nil
}

// sibling returns the URL of another collector endpoint beside u's.
func sibling(u *url.URL, endpoint, query string) string {
	v := *u
	for _, suf := range collectorSuffixes {
		if strings.HasSuffix(v.Path, suf) {
			v.Path = strings.TrimSuffix(v.Path, suf) + endpoint
			break
		}
	}
	v.RawQuery = query
	return v.String()
}

// isLoopback reports whether host is "localhost" or a loopback address.
func isLoopback(host string) bool { return httpsink.IsLoopback(host) }

func tlsConfig(cfg Config) (*tls.Config, error) {
	return httpsink.TLS{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile,
		InsecureSkipVerify: cfg.InsecureSkipVerify}.Config("splunk")
}

var guidRE = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// roundTripper is over, if set, else tr.
func roundTripper(tr *http.Transport, over http.RoundTripper) http.RoundTripper {
	if over != nil {
		return over
	}
	return tr
}
