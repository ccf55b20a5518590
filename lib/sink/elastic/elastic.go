// Package elastic is the sink for the Elasticsearch bulk API, and for
// stores that speak it (VictoriaLogs). Each record becomes one "create" of a
// document whose _id is its recordHash (or seq) and which carries the record
// line byte for byte, so a replay is idempotent. Send turns the bulk answer's
// items into a per-record Result (a 409 under IDField seq only once _mget
// shows the stored document is this record); Check proves the cluster and
// the credentials without writing. What the bulk API takes and answers, and
// how each answer is classified: docs/siems/elastic.md.
package elastic

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultIndex        = "declaragent-audit"
	DefaultTimeout      = 30 * time.Second
	DefaultMaxIdleConns = 16
)

// Auth kinds (Auth.Kind, matched without regard to case).
const (
	AuthNone   = "none"
	AuthAPIKey = "apiKey"
	AuthBasic  = "basic"
	AuthBearer = "bearer"
)

// ID fields (Config.IDField).
const (
	IDRecordHash = "recordHash"
	IDSeq        = "seq"
)

// Document shapes (Config.DocShape).
const (
	ShapeMessage = "message"
	ShapeLine    = "line"
)

// Config configures a Sink. Zero fields take the defaults above.
type Config struct {
	// URL is the base URL of the cluster, e.g. https://es.example.com:9200,
	// or of a compatible intake, e.g. http://127.0.0.1:9428/insert/elasticsearch
	// for VictoriaLogs. Requests go to <URL>/_bulk; a URL given with a
	// trailing /_bulk has it removed.
	URL string
	// Index is the index (or data stream, or alias) every document is
	// created in. Default DefaultIndex.
	Index string
	// IndexFor, if set, routes each record to its own index (per tenant,
	// per day: see lib/route) and Index is not used. It must be safe for
	// concurrent use and should be fast (it is called for every record,
	// on every attempt). A name it returns that ValidIndex refuses makes
	// that record Poison, with the reason; names are JSON-escaped into the
	// action line and never put into the URL, so no name can alter the
	// request.
	IndexFor func(*sink.Record) string
	// Auth is how requests authenticate.
	Auth Auth
	// Gzip compresses request bodies (level 1). Callers should default it
	// to true: audit lines compress about 5:1.
	Gzip bool
	// IDField is what the document _id is: IDRecordHash (default) or IDSeq.
	IDField string
	// DocShape is ShapeMessage (default) or ShapeLine; see the package
	// comment.
	DocShape  string
	sink.Conn // TLS, plain-http rule, timeout, idle connections, transport
}

// Auth says how requests authenticate. Only the fields of its Kind may be
// set.
type Auth struct {
	// Kind is AuthAPIKey, AuthBasic, AuthBearer, or AuthNone ("" too).
	Kind string
	// APIKey is the encoded API key (base64 of id:api_key, as Kibana and
	// the create API key API's "encoded" give it), for AuthAPIKey.
	APIKey *secret.Source
	// Username and Password are for AuthBasic. The username is not a
	// secret; it may not contain ':'.
	Username string
	Password *secret.Source
	// Token is the bearer token (an OAuth2 or service account token), for
	// AuthBearer.
	Token *secret.Source
}

// ErrClosed is returned by Send and Check after Close.
var ErrClosed = errors.New("elastic: sink is closed")

// Sink sends records to one Elasticsearch cluster. It is safe for
// concurrent use.
type Sink struct {
	cfg     Config
	kind    string // normalised Auth.Kind
	bulkURL string
	rootURL string
	mgetURL string
	display string // the base URL for messages: scheme://host/path
	action  []byte // `{"create":{"_index":"…","_id":` (the id and `}}` follow)
	c       *httpsink.Client
}

var _ sink.Sink = (*Sink)(nil)

// filterPath keeps, for every item, its status, error and _id, and so its
// position; items.*.error alone would drop the successful items.
const filterPath = "filter_path=errors,items.*.status,items.*.error,items.*._id"

// New checks cfg, applies defaults and returns a Sink. It reads the TLS
// files; it does not contact the cluster (see Check).
func New(cfg Config) (*Sink, error) {
	u, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	kind, err := checkAuth(cfg.Auth)
	if err != nil {
		return nil, err
	}
	if cfg.Index == "" {
		cfg.Index = DefaultIndex
	}
	if err := ValidIndex(cfg.Index); err != nil {
		return nil, err
	}
	switch cfg.IDField {
	case "":
		cfg.IDField = IDRecordHash
	case IDRecordHash, IDSeq:
	default:
		return nil, fmt.Errorf("elastic: IDField %q: want %q or %q", cfg.IDField, IDRecordHash, IDSeq)
	}
	switch cfg.DocShape {
	case "":
		cfg.DocShape = ShapeMessage
	case ShapeMessage, ShapeLine:
	default:
		return nil, fmt.Errorf("elastic: DocShape %q: want %q or %q", cfg.DocShape, ShapeMessage, ShapeLine)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxIdleConns <= 0 {
		cfg.MaxIdleConns = DefaultMaxIdleConns
	}
	sends := "the audit log"
	if kind != AuthNone {
		sends = "the " + kind + " credentials and the audit log"
	}
	c, err := httpsink.NewClient(httpsink.ClientConfig{
		Name: "elastic", Vendor: "Elasticsearch", Mask: "[secret]", Redirect: "the credentials",
		URL: u, Sends: sends,
		TLS: httpsink.TLS{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile,
			InsecureSkipVerify: cfg.InsecureSkipVerify},
		AllowInsecureHTTP: cfg.AllowInsecureHTTP,
		Auth: httpsink.Auth{Source: source(kind, cfg.Auth), What: kind + " secret", Set: func(h http.Header, v string) []string {
			a := authorization(kind, cfg.Auth.Username, v)
			h.Set("Authorization", a)
			return []string{a, v}
		}},
		On400: sink.Config, Text: responseText,
		Timeout: cfg.Timeout, MaxIdleConns: cfg.MaxIdleConns, Transport: cfg.Transport, Closed: ErrClosed,
	})
	if err != nil {
		return nil, err
	}
	c.NotFound = "no Elasticsearch bulk API at " + u.Scheme + "://" + u.Host + u.Path + ": check the URL (the base URL, without /_bulk)"

	base := u.String()
	return &Sink{
		cfg:     cfg,
		kind:    kind,
		bulkURL: base + "/_bulk?" + filterPath,
		rootURL: base + "/",
		mgetURL: base + "/_mget?_source_includes=recordHash&filter_path=docs._id,docs.found,docs.error,docs._source.recordHash",
		display: u.Scheme + "://" + u.Host + u.Path,
		action:  appendActionPrefix(nil, cfg.Index),
		c:       c,
	}, nil
}

// Close releases idle connections. Send and Check fail with ErrClosed
// afterwards; requests in flight finish.
func (s *Sink) Close() error { return s.c.Close() }

// parseURL checks the base URL. The returned URL has no trailing slash, no
// /_bulk, no query and no fragment.
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("elastic: no URL (e.g. https://es.example.com:9200)")
	}
	u, err := httpsink.ParseURL("elastic", raw, "give them in Auth (as secret references)", false)
	if err != nil {
		return nil, err
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/_bulk")
	u.Path = strings.TrimRight(p, "/")
	return u, nil
}

// ValidIndex reports whether name is a valid Elasticsearch index name, and
// if not, which rule it breaks.
func ValidIndex(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("elastic: index name %q is invalid: %s", name, why)
	}
	switch {
	case name == "":
		return bad("it is empty")
	case name == "." || name == "..":
		return bad(`it may not be "." or ".."`)
	case len(name) > 255:
		return bad(fmt.Sprintf("it is %d bytes long, over 255", len(name)))
	case !utf8.ValidString(name):
		return bad("it is not valid UTF-8")
	case strings.ToLower(name) != name:
		return bad("it must be lowercase")
	case strings.ContainsAny(name[:1], "-_+"):
		return bad("it may not start with -, _ or +")
	}
	if i := strings.IndexAny(name, "\\/*?\"<>|,#: "); i >= 0 {
		return bad(fmt.Sprintf(`it may not contain %q (none of \ / * ? " < > | , # : or space)`, name[i]))
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return bad("it may not contain control characters")
		}
	}
	return nil
}

// checkAuth checks a and returns its normalised kind.
func checkAuth(a Auth) (string, error) {
	var kind string
	switch {
	case a.Kind == "" || strings.EqualFold(a.Kind, AuthNone):
		kind = AuthNone
	case strings.EqualFold(a.Kind, AuthAPIKey):
		kind = AuthAPIKey
	case strings.EqualFold(a.Kind, AuthBasic):
		kind = AuthBasic
	case strings.EqualFold(a.Kind, AuthBearer):
		kind = AuthBearer
	default:
		return "", fmt.Errorf("elastic: Auth.Kind %q: want %s, %s, %s or %s", a.Kind, AuthAPIKey, AuthBasic, AuthBearer, AuthNone)
	}
	set := map[string]bool{
		AuthAPIKey: a.APIKey != nil,
		AuthBasic:  a.Username != "" || a.Password != nil,
		AuthBearer: a.Token != nil,
	}
	for _, k := range []string{AuthAPIKey, AuthBasic, AuthBearer} {
		if set[k] && k != kind {
			return "", fmt.Errorf("elastic: Auth.Kind is %s but %s credentials are set: set Kind to the one meant", kind, k)
		}
	}
	switch kind {
	case AuthAPIKey:
		if a.APIKey == nil {
			return "", errors.New("elastic: Auth.Kind apiKey needs APIKey (a secret reference: env:NAME or file:PATH)")
		}
	case AuthBasic:
		if a.Username == "" || a.Password == nil {
			return "", errors.New("elastic: Auth.Kind basic needs Username and Password (a secret reference: env:NAME or file:PATH)")
		}
		if strings.ContainsAny(a.Username, ":\r\n") {
			return "", errors.New("elastic: Auth.Username may not contain ':' or a line break")
		}
	case AuthBearer:
		if a.Token == nil {
			return "", errors.New("elastic: Auth.Kind bearer needs Token (a secret reference: env:NAME or file:PATH)")
		}
	}
	return kind, nil
}

// indexOf returns the index r goes to.
func (s *Sink) indexOf(r *sink.Record) string {
	if s.cfg.IndexFor != nil {
		return s.cfg.IndexFor(r)
	}
	return s.cfg.Index
}

// source returns the secret.Source the auth kind uses, nil for none.
func source(kind string, a Auth) *secret.Source {
	switch kind {
	case AuthAPIKey:
		return a.APIKey
	case AuthBasic:
		return a.Password
	case AuthBearer:
		return a.Token
	}
	return nil
}

// source returns the secret.Source the sink's auth kind uses, nil for none.
func (s *Sink) source() *secret.Source { return source(s.kind, s.cfg.Auth) }

// authorization is the Authorization header value for the secret v.
func authorization(kind, username, v string) string {
	switch kind {
	case AuthAPIKey:
		return "ApiKey " + v
	case AuthBasic:
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(username+":"+v))
	}
	return "Bearer " + v
}
