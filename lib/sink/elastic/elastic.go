// Package elastic is the sink for the Elasticsearch bulk API (POST
// <URL>/_bulk), and for stores that speak it (VictoriaLogs at
// /insert/elasticsearch).
//
// # Documents
//
// Every record becomes one "create" action with the configured index and
// an explicit _id, followed by its document; every line ends in "\n":
//
//	{"create":{"_index":"declaragent-audit","_id":"<recordHash>"}}
//	{"@timestamp":"2025-11-27T12:00:00.123Z","seq":42,"tenantId":"acme","kind":"tool_call",
//	 "recordHash":"…","prevHash":"…","message":"{\"seq\":42,…}"}
//
// The _id is the recordHash by default (IDField "recordHash"): it is
// globally unique, so the documents of a reset database cannot collide with
// old ones, and a replay is idempotent: Elasticsearch refuses the second
// create of an _id with 409, which counts as Duplicate (delivered). That
// 409 needs no check: the _id is the record's recordHash, the SHA-256 of
// the chain up to and including it, so the document holding that _id is
// this record (only a hash collision could make it another).
//
// IDField "seq" uses the seq instead (readable). A 409 then says only that
// the index holds some document under that seq: after a database reset, or
// with a second host shipping to the same index, it is another chain's. So
// every 409 is checked: Send fetches the conflicting documents' recordHash
// (_mget, at most 500 ids a request, _source_includes=recordHash) and
// counts a record Duplicate only if the stored hash equals its own. A
// different hash (or none) is a sink.Conflict naming seq, _id, index and
// both hashes: the shipper stops and acks none of those records. A
// document no longer found is resent (Retryable). The credentials then
// need the read privilege on the index too; a 401/403 on _mget is Config,
// saying so. "index" is never used: it would overwrite.
//
// DocShape "message" (the default) is the document above: the whole
// record line as the JSON string "message", so _source.message holds the
// exact bytes of the line and a chain re-verification from a search export
// takes the fast path; @timestamp is the record's ts (RFC 3339, UTC,
// milliseconds; left out if ts is outside years 1970..9999, which a data
// stream then rejects as poison); seq, tenantId, kind, recordHash and
// prevHash are searchable fields. It suits data streams (they need
// @timestamp) and plain indices alike.
//
// DocShape "line" sends the record line itself as the document: _source is
// byte for byte the record line, and every field of the record is indexed
// (record.*), which needs a mapping that copes with arbitrary record
// fields ("record" as flattened, or dynamic:false) or an ingest pipeline,
// and @timestamp for a data stream; a mapping conflict makes the record
// poison. VictoriaLogs stores such a document without a message field.
//
// # VictoriaLogs
//
// In the "message" shape every request carries the headers
// "VL-Msg-Field: message" and "VL-Time-Field: @timestamp", which make
// VictoriaLogs store message as _msg (byte-exact) and @timestamp as _time
// (it reads the same settings from the _msg_field and _time_field query
// arguments, or from these headers: internal/vlogs and VictoriaLogs'
// insertutil.GetCommonParams). Headers, not query arguments, because
// Elasticsearch rejects a request with an unknown query parameter (400
// "request [/_bulk] contains unrecognized parameter") but ignores unknown
// headers; so the same configuration works against both, with no switch.
// For VictoriaLogs set URL to http://HOST:9428/insert/elasticsearch.
// VictoriaLogs ignores _index and _id (a replay stores the records again)
// and answers 201 for every item.
//
// # Outcomes
//
// Requests go to <URL>/_bulk?filter_path=errors,items.*.status,items.*.error,items.*._id
// (every item keeps its place, so item i is record i). Elasticsearch answers
// 200 even when items fail; each item is classified:
//
//   - 200, 201: Delivered. 409 version_conflict_engine_exception:
//     Duplicate (with IDField "seq" only once _mget shows the stored
//     document has this record's recordHash; else Conflict, see above).
//   - 408, 429 (es_rejected_execution_exception), 5xx: left Pending, and
//     Send returns a Retryable *sink.Error with the Result, so the shipper
//     backs off (honouring Retry-After) and resends only those records.
//   - 401, 403 (security_exception: the credentials may not write to the
//     index): left Pending, and Send returns a Config error: a permission
//     problem is configuration, not a bad record.
//   - Other 4xx (400 mapper_parsing_exception, document_parsing_exception,
//     404 index_not_found_exception, …): Poison, Reason
//     "<status> <error.type>: <error.reason>" (and its caused_by).
//   - An item without a usable status: Pending, Retryable.
//
// Only the bulk API's success answer counts: HTTP 200 and a JSON object
// with a boolean "errors" and exactly one item per document sent. Any
// other 2xx (not JSON, empty, truncated, no "errors", another item count,
// an item _id other than the one sent, 201/202) and an answer that came
// before the request body was sent in full are Retryable and nothing
// counts as delivered: success is never assumed, and the message names
// what answered (httpsink.Unexpected).
//
// A whole-request failure: 413 TooLarge (the shipper splits); 408, 429,
// 5xx, network errors and timeouts Retryable with Retry-After; 401 and 403
// Config, after the secret was re-resolved once (a rotated key or password
// needs no restart); other statuses (3xx, 400, 404, …) Config with the
// response text, cut to 512 bytes, secrets masked. A cancelled ctx is
// returned as it is.
//
// Records that cannot be sent at all (IDField "recordHash" and an empty
// recordHash) are Poison without being sent. So is, to a server that
// answers as VictoriaLogs (X-Server-Hostname; asked with GET / before the
// first request holding such a record), a record line over
// httpsink.VictoriaLogsMaxEntry-VictoriaLogsOverhead, with a
// sink.TooLargeReason: VictoriaLogs drops an entry over 2 MiB and still
// answers 201.
//
// # Index names
//
// Config.IndexFor routes each record to an index of its own (lib/route
// renders per-tenant or per-day names); the index then is in each action
// line, JSON-escaped, and the request still goes to <URL>/_bulk, so no
// routed name can reach the URL. A permission refusal names the index of
// the refused document.
//
// New checks the index against Elasticsearch's rules: lowercase; none of
// \ / * ? " < > | , # : or space; not starting with -, _ or +; not "." or
// ".."; at most 255 bytes. (":" is refused since Elasticsearch 7.0; it
// names a remote cluster.)
//
// # Authentication
//
// Auth.Kind "apiKey" sends "Authorization: ApiKey <key>" with the key as
// given (the "encoded" key Kibana shows, already base64 of id:key);
// "basic" sends Username and Password; "bearer" a token; "" or "none"
// nothing. Secrets are *secret.Source references (env:NAME, file:PATH) and
// never appear in an error: response texts have them (and the encoded
// header) replaced by "[secret]".
//
// # Transport
//
// As the Splunk sink: HTTPS with TLS 1.2 or later; CAFile replaces the
// system roots; CertFile/KeyFile give a client certificate; plain http://
// is refused unless the host is loopback (tests, a local VictoriaLogs) or
// AllowInsecureHTTP is set, even without credentials, because the audit
// log itself would cross the network in clear and could be altered on the
// way. Redirects are not followed. HTTPS_PROXY, HTTP_PROXY and NO_PROXY
// are honoured.
//
// # Check
//
// Check sends GET <URL>/ with the credentials (it needs no monitor
// privilege, unlike /_cluster/health) and wants a JSON object back; 401
// and 403 give a Config error saying what to fix. It writes nothing and
// does not check the index or the write privilege.
package elastic

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
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
	DocShape string
	// CAFile is a PEM bundle of the CAs to trust instead of the system
	// roots. CertFile and KeyFile are a PEM client certificate and key
	// (both or neither).
	CAFile   string
	CertFile string
	KeyFile  string
	// InsecureSkipVerify turns off verification of the server certificate.
	// DANGEROUS: anyone on the path can then read the credentials and the
	// audit log, and forge answers. For a lab only; use CAFile instead.
	InsecureSkipVerify bool
	// AllowInsecureHTTP allows a plain http:// URL to a non-loopback host,
	// sending the credentials and the audit log unencrypted.
	AllowInsecureHTTP bool
	// Timeout bounds each HTTP request, from sending to reading the
	// response (default 30s).
	Timeout time.Duration
	// MaxIdleConns is how many idle connections to keep to the cluster, at
	// least the number of requests the shipper keeps in flight (default 16).
	MaxIdleConns int
	// Transport, if set, carries the requests instead of the sink's own
	// (audit-ship --dry-run captures them there; nothing is sent).
	Transport http.RoundTripper
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
	cfg       Config
	kind      string // normalised Auth.Kind
	bulkURL   string
	rootURL   string
	mgetURL   string
	display   string // the base URL for messages: scheme://host/path
	action    []byte // `{"create":{"_index":"…","_id":` (the id and `}}` follow)
	transport *http.Transport
	client    *http.Client
	closed    atomic.Bool
	store     httpsink.Store // VictoriaLogs or not, from the answers' headers
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
	if u.Scheme == "http" {
		if cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" || cfg.InsecureSkipVerify {
			return nil, fmt.Errorf("elastic: TLS options are set but URL %s is plain http", u.Redacted())
		}
		if !cfg.AllowInsecureHTTP && !isLoopback(u.Hostname()) {
			what := "the audit log"
			if kind != AuthNone {
				what = "the " + kind + " credentials and the audit log"
			}
			return nil, fmt.Errorf("elastic: refusing to send %s over plain http to %s: "+
				"use https, or allow it explicitly with --allow-insecure-http", what, u.Host)
		}
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

	base := u.String()
	return &Sink{
		cfg:       cfg,
		kind:      kind,
		bulkURL:   base + "/_bulk?" + filterPath,
		rootURL:   base + "/",
		mgetURL:   base + "/_mget?_source_includes=recordHash&filter_path=docs._id,docs.found,docs.error,docs._source.recordHash",
		display:   u.Scheme + "://" + u.Host + u.Path,
		action:    appendActionPrefix(nil, cfg.Index),
		transport: tr,
		client: &http.Client{
			Transport: roundTripper(tr, cfg.Transport),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// Close releases idle connections. Send and Check fail with ErrClosed
// afterwards; requests in flight finish.
func (s *Sink) Close() error {
	s.closed.Store(true)
	s.transport.CloseIdleConnections()
	return nil
}

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
func (s *Sink) source() *secret.Source {
	switch s.kind {
	case AuthAPIKey:
		return s.cfg.Auth.APIKey
	case AuthBasic:
		return s.cfg.Auth.Password
	case AuthBearer:
		return s.cfg.Auth.Token
	}
	return nil
}

// credential is one resolved Authorization header value, and the strings
// to scrub from any text shown to a user.
type credential struct {
	header string
	secret string // the secret itself
}

// makeCredential builds the header value for the secret value v.
func (s *Sink) makeCredential(v string) (credential, error) {
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			return credential{}, fmt.Errorf("the secret from %s contains a control character (a line break inside the value?)", s.source())
		}
	}
	switch s.kind {
	case AuthAPIKey:
		return credential{header: "ApiKey " + v, secret: v}, nil
	case AuthBasic:
		return credential{header: "Basic " + base64.StdEncoding.EncodeToString([]byte(s.cfg.Auth.Username+":"+v)), secret: v}, nil
	case AuthBearer:
		return credential{header: "Bearer " + v, secret: v}, nil
	}
	return credential{}, nil
}

// isLoopback reports whether host is "localhost" or a loopback address.
func isLoopback(host string) bool { return httpsink.IsLoopback(host) }

func tlsConfig(cfg Config) (*tls.Config, error) {
	return httpsink.TLS{CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile,
		InsecureSkipVerify: cfg.InsecureSkipVerify}.Config("elastic")
}

// roundTripper is over, if set, else tr.
func roundTripper(tr *http.Transport, over http.RoundTripper) http.RoundTripper {
	if over != nil {
		return over
	}
	return tr
}
