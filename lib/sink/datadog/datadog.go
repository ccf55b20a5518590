// Package datadog is the sink for the Datadog Logs API v2 intake, and for
// stores that speak it (VictoriaLogs). Each record becomes one log whose
// message is the record line as a JSON string. Send never sends what
// Datadog would truncate or refuse for its size (MaxLogs, MaxRequestBytes,
// MaxLogBytes) and counts the records Delivered only on Datadog's success
// answer; Check proves the key without writing. What the intake takes and
// answers, its limits, and how each answer is classified:
// docs/siems/datadog.md.
package datadog

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
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

// Datadog's intake limits, in their strict reading (docs/siems/datadog.md).
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
	Gzip      bool
	sink.Conn // TLS, plain-http rule, timeout, idle connections, transport
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
	c           *httpsink.Client
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
	var endpoint *url.URL
	if cfg.URL != "" {
		u, err := parseURL(cfg.URL)
		if err != nil {
			return nil, err
		}
		endpoint = u
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
	c, err := httpsink.NewClient(httpsink.ClientConfig{
		Name: "datadog", Vendor: "Datadog", Mask: "[secret]", Redirect: "the API key",
		URL: endpoint, Sends: "the API key and the audit log",
		TLS: httpsink.TLS{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile,
			InsecureSkipVerify: cfg.InsecureSkipVerify},
		AllowInsecureHTTP: cfg.AllowInsecureHTTP,
		Auth: httpsink.Auth{Source: cfg.APIKey, What: "Datadog API key", Set: func(h http.Header, v string) []string {
			h.Set("DD-API-KEY", v)
			return []string{v}
		}},
		On400: sink.Config, Text: responseText,
		Timeout: cfg.Timeout, MaxIdleConns: cfg.MaxIdleConns, Transport: cfg.Transport, Closed: ErrClosed,
	})
	if err != nil {
		return nil, err
	}
	c.NotFound = "no Datadog logs intake at " + s.display + ": check Site or URL"

	s.cfg = cfg
	metaTags := cfg.Tags
	if cfg.TagsFor != nil {
		metaTags = "" // each log gets its own
	}
	s.meta = appendMeta(nil, cfg.Source, metaTags, cfg.Hostname, cfg.Service)
	s.c = c
	return s, nil
}

// Close releases idle connections. Send and Check fail with ErrClosed
// afterwards; requests in flight finish.
func (s *Sink) Close() error { return s.c.Close() }

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
