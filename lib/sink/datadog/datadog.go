// Package datadog is the sink for the Datadog Logs API v2 intake (POST
// https://http-intake.logs.<site>/api/v2/logs), and for stores that speak
// it (VictoriaLogs at /api/v2/logs or /insert/datadog/api/v2/logs).
//
// # Logs
//
// Each record becomes one log; a request is a JSON array of them,
// Content-Type application/json, gzip-compressed with Config.Gzip:
//
//	{"ddsource":"declaragent:audit","ddtags":"env:prod,team:platform","hostname":"h",
//	 "service":"declaragent","message":"{\"seq\":42,…}","timestamp":1764244800123,
//	 "seq":"42","tenantId":"acme","kind":"tool_call","recordHash":"…","prevHash":"…"}
//
// message is the whole record line as a JSON string, so the line can be
// re-verified from a search export. timestamp is the record's ts in
// milliseconds, on every log (VictoriaLogs gives a log without one the
// previous log's time). The attributes are strings, seq too: VictoriaLogs
// answers 400 to a number or an object, and Datadog takes strings as they
// are. Empty ddtags and hostname are left out. No idempotency key exists:
// a retried request may be stored twice, so every log carries seq and
// recordHash for finding duplicates at search time.
//
// Datadog rejects or restamps logs whose timestamp is more than 18 hours
// old. A backlog replayed after a long outage therefore may show a _time
// (Datadog's date) later than the record's: the record's own time stays
// in the message ("ts") and seq orders the chain. Alerts that window on
// the log date can miss or double-count such a replay; window on seq, or
// on the ts inside the message, instead. Datadog also parses a message
// holding JSON into attributes; what it keeps as the message text of such
// a log is up to its pipeline, not this sink (unconfirmed here).
//
// # Limits
//
// Datadog accepts at most MaxLogs (1000) logs and MaxRequestBytes of
// uncompressed body per request, and MaxLogBytes per log. Its
// documentation says "5MB" and "1MB" without saying whether a MB is 10^6
// or 2^20 bytes; the sink takes the smaller reading (5,000,000 and
// 1,000,000 bytes), so it never crosses either, and measures a log as the
// bytes of its JSON object as sent (escapes included). Before sending:
//
//   - A log over MaxLogBytes is never sent: Datadog would accept it with
//     2xx and truncate it, silently breaking the chain. Its record is
//     Poison, Reason (sink.TooLargeReason) "too large: record is N bytes,
//     over Datadog's 1 MB per-log limit
//     (Datadog would truncate it and break the chain)", N being the log's
//     size; the other records are sent.
//   - If the rest is more than MaxLogs logs or MaxRequestBytes bytes, Send
//     sends nothing and returns a TooLarge error; the shipper splits the
//     batch. Batches capped at 1000 records and 3 MB of record lines stay
//     clear of it (escaping a line's quotes adds about a tenth, and each
//     log's attributes about 400 bytes).
//
// # Outcomes
//
// Datadog gives no per-log results. Its documented success answer, 202
// with a JSON object ({}): every record sent is Delivered. Any other 2xx
// (200, 204, an HTML or empty body) or an answer that came before the
// request body was sent in full: Retryable, nothing delivered, naming what
// answered (httpsink.Unexpected). 400: BadRequest, so the shipper bisects down to the poison
// record instead of resending the same batch (Datadog may have kept the
// logs before the bad one, as VictoriaLogs does: bisecting then duplicates
// some). 401 and 403: the key is re-resolved (APIKey.Refresh) and, if it
// changed, the request is sent again at once; otherwise Config. 413:
// TooLarge. 408, 429, 5xx, network errors and timeouts: Retryable with
// RetryAfter from a Retry-After header. Other statuses (3xx, 404, other
// 4xx): Config. A cancelled ctx is returned as it is. No error contains
// the API key: response texts have it replaced by "[secret]" and are cut
// to 512 bytes.
//
// # Sites and URL
//
// Site is one of Sites (default datadoghq.com). URL, when set, replaces
// the intake and API hosts, for a proxy or a compatible store: requests go
// to <URL>/api/v2/logs and <URL>/api/v1/validate. For VictoriaLogs set it
// to http://HOST:9428 (or http://HOST:9428/insert/datadog).
//
// # Transport
//
// As the Splunk sink: HTTPS with TLS 1.2 or later; CAFile replaces the
// system roots; CertFile/KeyFile give a client certificate; a plain
// http:// URL is refused unless its host is loopback or AllowInsecureHTTP
// is set (the API key would cross the network in clear). Redirects are not
// followed. HTTPS_PROXY, HTTP_PROXY and NO_PROXY are honoured.
//
// # Check
//
// Check sends GET https://api.<site>/api/v1/validate with the key and
// wants {"valid":true}. 401/403 (after re-reading the key once) is a
// Config error that says so; keys belong to one site, so a key of another
// site is refused too. With URL set, the answer may also be a JSON object
// without "valid" (VictoriaLogs answers {} and checks no key), and if the
// endpoint answers 404, Check falls back to POSTing an empty array to the
// intake, which writes nothing: a 2xx there means the intake exists,
// though the key is then not verified.
package datadog

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultSite         = "datadoghq.com"
	DefaultService      = "declaragent"
	DefaultSource       = "declaragent:audit"
	DefaultTimeout      = 30 * time.Second
	DefaultMaxIdleConns = 16
)

// Datadog's intake limits, in their strict reading (see the package comment).
const (
	MaxLogs         = 1000
	MaxRequestBytes = 5_000_000
	MaxLogBytes     = 1_000_000
)

// Sites are the Datadog sites Config.Site may name.
var Sites = []string{
	"datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "datadoghq.eu",
	"ap1.datadoghq.com", "ap2.datadoghq.com", "ddog-gov.com",
}

// Config configures a Sink. Zero fields take the defaults above.
type Config struct {
	// Site is the Datadog site, one of Sites. Default DefaultSite.
	Site string
	// URL, if set, replaces https://http-intake.logs.<site> and
	// https://api.<site>: logs go to <URL>/api/v2/logs, the key check to
	// <URL>/api/v1/validate. For tests, proxies and VictoriaLogs.
	URL string
	// APIKey is the Datadog API key (sent as DD-API-KEY). Required. It is
	// re-resolved after a 401/403.
	APIKey *secret.Source
	// Service and Source are the service and ddsource of every log.
	// Defaults DefaultService and DefaultSource.
	Service string
	Source  string
	// Tags are the ddtags, "key:value" separated by commas
	// ("env:prod,team:platform"); blanks around each tag are removed.
	Tags string
	// TagsFor, if set, gives the ddtags of each record (per-tenant tags:
	// see lib/route) and Tags is not used; "" leaves the log without
	// ddtags. It must be safe for concurrent use and fast (it is called for
	// every record, on every attempt). The value is JSON-escaped into the
	// log, so it cannot alter the request.
	TagsFor func(*sink.Record) string
	// Hostname is the hostname of every log. Default os.Hostname().
	Hostname string
	// Gzip compresses request bodies (level 1). Callers should default it
	// to true: audit lines compress about 5:1.
	Gzip bool
	// CAFile is a PEM bundle of the CAs to trust instead of the system
	// roots. CertFile and KeyFile are a PEM client certificate and key
	// (both or neither).
	CAFile   string
	CertFile string
	KeyFile  string
	// InsecureSkipVerify turns off verification of the server certificate.
	// DANGEROUS: anyone on the path can then read the key and the audit
	// log. For a lab only; use CAFile instead.
	InsecureSkipVerify bool
	// AllowInsecureHTTP allows a plain http:// URL to a non-loopback host,
	// sending the API key and the audit log unencrypted.
	AllowInsecureHTTP bool
	// Timeout bounds each HTTP request, from sending to reading the
	// response (default 30s).
	Timeout time.Duration
	// MaxIdleConns is how many idle connections to keep, at least the
	// number of requests the shipper keeps in flight (default 16).
	MaxIdleConns int
	// Transport, if set, carries the requests instead of the sink's own
	// (audit-ship --dry-run captures them there; nothing is sent).
	Transport http.RoundTripper
}

// ErrClosed is returned by Send and Check after Close.
var ErrClosed = errors.New("datadog: sink is closed")

// Sink sends records to one Datadog logs intake. It is safe for
// concurrent use.
type Sink struct {
	cfg         Config
	override    bool // URL was given
	intakeURL   string
	validateURL string
	display     string // where logs go, for messages
	meta        []byte // `"ddsource":…,"ddtags":…,"hostname":…,"service":…,`
	transport   *http.Transport
	client      *http.Client
	closed      atomic.Bool
}

var _ sink.Sink = (*Sink)(nil)

// New checks cfg, applies defaults and returns a Sink. It reads the TLS
// files; it does not contact Datadog (see Check).
func New(cfg Config) (*Sink, error) {
	if cfg.APIKey == nil {
		return nil, errors.New("datadog: no API key: give a secret reference (env:NAME or file:PATH)")
	}
	site := strings.ToLower(strings.TrimSpace(cfg.Site))
	if site == "" {
		site = DefaultSite
	}
	if !slices.Contains(Sites, site) {
		return nil, fmt.Errorf("datadog: unknown site %q: want one of %s (the part after app. in the address you log in at)",
			cfg.Site, strings.Join(Sites, ", "))
	}
	cfg.Site = site
	s := &Sink{
		intakeURL:   "https://http-intake.logs." + site + "/api/v2/logs",
		validateURL: "https://api." + site + "/api/v1/validate",
		display:     "https://http-intake.logs." + site,
	}
	if cfg.URL != "" {
		u, err := parseURL(cfg.URL)
		if err != nil {
			return nil, err
		}
		if u.Scheme == "http" {
			if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" || cfg.InsecureSkipVerify {
				return nil, fmt.Errorf("datadog: TLS options are set but URL %s is plain http", u.Redacted())
			}
			if !cfg.AllowInsecureHTTP && !isLoopback(u.Hostname()) {
				return nil, fmt.Errorf("datadog: refusing to send the API key and the audit log over plain http to %s: "+
					"use https, or allow it explicitly with --allow-insecure-http", u.Host)
			}
		}
		base := u.String()
		s.override = true
		s.intakeURL, s.validateURL, s.display = base+"/api/v2/logs", base+"/api/v1/validate", base
	}
	if cfg.Service == "" {
		cfg.Service = DefaultService
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname() // left out of logs if unknown
	}
	tags, err := normalizeTags(cfg.Tags)
	if err != nil {
		return nil, err
	}
	cfg.Tags = tags
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxIdleConns <= 0 {
		cfg.MaxIdleConns = DefaultMaxIdleConns
	}
	tlsConf, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone() // keeps dial timeouts and HTTP/2
	tr.Proxy = http.ProxyFromEnvironment
	tr.TLSClientConfig = tlsConf
	tr.MaxIdleConns = cfg.MaxIdleConns
	tr.MaxIdleConnsPerHost = cfg.MaxIdleConns
	tr.IdleConnTimeout = 30 * time.Second // below common load balancer idle timeouts

	s.cfg = cfg
	metaTags := cfg.Tags
	if cfg.TagsFor != nil {
		metaTags = "" // each log gets its own
	}
	s.meta = appendMeta(nil, cfg.Source, metaTags, cfg.Hostname, cfg.Service)
	s.transport = tr
	s.client = &http.Client{
		Transport: roundTripper(tr, cfg.Transport),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return s, nil
}

// Close releases idle connections. Send and Check fail with ErrClosed
// afterwards; requests in flight finish.
func (s *Sink) Close() error {
	s.closed.Store(true)
	s.transport.CloseIdleConnections()
	return nil
}

// normalizeTags trims blanks around each tag and drops empty ones.
func normalizeTags(tags string) (string, error) {
	var out []string
	for t := range strings.SplitSeq(tags, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		for _, c := range t {
			if c < 0x20 || c == 0x7f {
				return "", fmt.Errorf("datadog: tag %q holds a control character", t)
			}
		}
		out = append(out, t)
	}
	return strings.Join(out, ","), nil
}

// parseURL checks an override URL. The returned URL has no trailing
// slash, no /api/v2/logs, no query and no fragment.
func parseURL(raw string) (*url.URL, error) {
	// A query is refused: Datadog takes ?dd-api-key=.
	u, err := httpsink.ParseURL("datadog", raw, "Datadog takes only the API key", false)
	if err != nil {
		return nil, err
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/api/v2/logs")
	u.Path = strings.TrimRight(p, "/")
	return u, nil
}

// isLoopback reports whether host is "localhost" or a loopback address.
func isLoopback(host string) bool { return httpsink.IsLoopback(host) }

func tlsConfig(cfg Config) (*tls.Config, error) {
	return httpsink.TLS{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile,
		InsecureSkipVerify: cfg.InsecureSkipVerify}.Config("datadog")
}

// roundTripper is over, if set, else tr.
func roundTripper(tr *http.Transport, over http.RoundTripper) http.RoundTripper {
	if over != nil {
		return over
	}
	return tr
}
