// Package splunk is the sink for the Splunk HTTP Event Collector's event
// endpoint, and for stores that speak it (VictoriaLogs). Each record becomes
// one HEC event whose "event" is the record line as a JSON string, so the
// store keeps the line's exact bytes. With Endpoint "raw" the body is the
// record lines themselves, one a line, sent to /services/collector/raw
// with a channel and the metadata as query parameters (the sourcetype's
// props.conf breaks the lines into events: docs/siems/splunk.md). Send turns HEC's answer (its codes,
// invalid-event-number and, with IndexerAck, the acknowledgement poll) into
// a per-record Result; Check proves the endpoint and the token without
// writing an event. What HEC takes and answers, and how each answer is
// classified: docs/siems/splunk.md.
package splunk

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultPath         = "/services/collector/event"
	RawPath             = "/services/collector/raw"
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
	// Endpoint is "event" (the default when empty: one JSON event per
	// record) or "raw": the record lines themselves as the body of
	// /services/collector/raw, no envelope and no escaping, with a channel
	// (generated when Channel is empty: HEC requires one for raw) and
	// host, source, sourcetype and index as query parameters. Raw takes
	// one index per request, so it does not go with IndexFor; the event's
	// time and fields come from the sourcetype's props.conf.
	Endpoint string
	// NoFields leaves the "fields" block (seq, tenantId, kind, recordHash
	// as indexed fields, values the line already holds) out of /event
	// events: a smaller body, and less to compress; those values are then
	// search-time fields of the JSON line (spath) instead of indexed ones.
	NoFields  bool
	sink.Conn // TLS, plain-http rule, timeout, idle connections, transport
}

// Endpoints are the values of Config.Endpoint (and --endpoint).
const (
	EndpointEvent = "event"
	EndpointRaw   = "raw"
)

// ErrClosed is returned by Send and Check after Close.
var ErrClosed = errors.New("splunk: sink is closed")

// Sink sends records to one HEC endpoint. It is safe for concurrent use.
type Sink struct {
	cfg       Config
	eventURL  string
	rawURL    string // with Endpoint raw: where Send posts, with its query
	ackURL    string
	healthURL string
	display   string // the endpoint for messages: scheme://host/path
	meta      []byte // the constant part of every event
	c         *httpsink.Client
}

var _ sink.Sink = (*Sink)(nil)

// New checks cfg, applies defaults and returns a Sink. It reads the TLS
// files; it does not contact the server (see Check).
func New(cfg Config) (*Sink, error) {
	if cfg.Token == nil {
		return nil, errors.New("splunk: no token: give a secret reference (env:NAME or file:PATH)")
	}
	raw := false
	switch cfg.Endpoint {
	case "", EndpointEvent:
		cfg.Endpoint = EndpointEvent
	case EndpointRaw:
		raw = true
		if cfg.IndexFor != nil {
			return nil, errors.New("splunk: the raw endpoint takes one index per request (a query parameter): an index template needs the event endpoint")
		}
	default:
		return nil, fmt.Errorf("splunk: endpoint %q: want %s or %s", cfg.Endpoint, EndpointEvent, EndpointRaw)
	}
	u, err := parseURL(cfg.URL, raw)
	if err != nil {
		return nil, err
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
	if cfg.Channel == "" && (cfg.IndexerAck || raw) {
		cfg.Channel = newUUID()
	}
	if cfg.Channel != "" && !guidRE.MatchString(cfg.Channel) {
		return nil, fmt.Errorf("splunk: channel %q is not a GUID (like 0f8d6c2e-3c1a-4f7e-9b1d-2a5e8c7d9f10)", cfg.Channel)
	}
	c, err := httpsink.NewClient(httpsink.ClientConfig{
		Name: "splunk", Vendor: "HEC", Mask: "[token]", Redirect: "the token",
		URL: u, Sends: "the HEC token",
		TLS: httpsink.TLS{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile,
			InsecureSkipVerify: cfg.InsecureSkipVerify},
		AllowInsecureHTTP: cfg.AllowInsecureHTTP,
		Auth: httpsink.Auth{Source: cfg.Token, What: "HEC token", Set: func(h http.Header, v string) []string {
			h.Set("Authorization", "Splunk "+v)
			return []string{v}
		}},
		On400: sink.BadRequest, Text: hecText,
		Timeout: cfg.Timeout, MaxIdleConns: cfg.MaxIdleConns, Transport: cfg.Transport, Closed: ErrClosed,
	})
	if err != nil {
		return nil, err
	}
	c.NotFound = "no HEC endpoint at " + u.Scheme + "://" + u.Host + u.Path + ": check the URL and that HEC is enabled"

	s := &Sink{
		cfg:       cfg,
		eventURL:  u.String(),
		ackURL:    sibling(u, "/services/collector/ack", "channel="+cfg.Channel),
		healthURL: sibling(u, "/services/collector/health", ""),
		display:   u.Scheme + "://" + u.Host + u.Path,
		meta:      appendMeta(nil, cfg.Host, cfg.Source, cfg.Sourcetype, staticIndex(cfg)),
		c:         c,
	}
	if cfg.Channel == "" {
		s.ackURL = sibling(u, "/services/collector/ack", "")
	}
	if raw {
		q := url.Values{}
		q.Set("channel", cfg.Channel)
		for _, kv := range [][2]string{{"host", cfg.Host}, {"source", cfg.Source}, {"sourcetype", cfg.Sourcetype}, {"index", cfg.Index}} {
			if kv[1] != "" {
				q.Set(kv[0], kv[1])
			}
		}
		s.rawURL = sibling(u, RawPath, q.Encode())
		// Checkpoint lines (seal --emit-checkpoints) still go to /event.
		s.eventURL = sibling(u, DefaultPath, "")
		s.display = u.Scheme + "://" + u.Host + sibling(&url.URL{Path: u.Path}, RawPath, "")
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
func (s *Sink) Close() error { return s.c.Close() }

// collectorSuffixes are the HEC event endpoint paths, longest first.
var collectorSuffixes = []string{"/services/collector/event/1.0", "/services/collector/event", "/services/collector"}

// parseURL checks the endpoint URL and fills in the default path. The
// returned URL's Path ends in one of collectorSuffixes. With rawEndpoint a
// URL ending in RawPath is taken too (its event endpoint returned).
func parseURL(raw string, rawEndpoint bool) (*url.URL, error) {
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
	if rawEndpoint && strings.HasSuffix(p, RawPath) {
		p = strings.TrimSuffix(p, RawPath) + DefaultPath
	}
	if strings.HasSuffix(p, RawPath) || strings.Contains(p, RawPath+"/") {
		return nil, fmt.Errorf("splunk: URL path %s is the raw endpoint, which takes a different body: use %s, or --endpoint raw", p, DefaultPath)
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

var guidRE = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
