// Package esfake is a fake Elasticsearch for tests: an httptest server on
// 127.0.0.1 that speaks the part of the REST API a bulk shipper uses, as
// the Elasticsearch documentation describes it. It is not Elasticsearch:
// it has no mappings, no search and no shards; it keeps the documents it
// accepted in memory, by index and _id, for the test to inspect.
//
// VictoriaLogs (see internal/vlogs) is the real store the project tests
// against. Its bulk endpoint checks no credentials, ignores _index and
// _id (no 409 on a repeated create), answers 201 for every item and has no
// fault modes. This fake covers that part of the protocol:
//
//   - Authentication: "Authorization: ApiKey <encoded>", "Basic
//     <base64(user:password)>" or "Bearer <token>", checked against
//     Options.APIKeys, Users and Tokens (changeable while it runs: SetAPIKeys,
//     SetUsers, SetTokens). With none configured, every request is
//     anonymous and allowed. Missing credentials: 401 security_exception
//     "missing authentication credentials"; wrong ones: 401 "unable to
//     authenticate"; credentials in Options.ReadOnly: 403 security_exception
//     for the whole bulk request ("action [indices:data/write/bulk] is
//     unauthorized"), while GET / still works.
//   - POST /_bulk and /<index>/_bulk: Content-Type must be application/json
//     or application/x-ndjson (else 406); Content-Encoding: gzip is
//     accepted; the body must end in "\n" (else 400); action lines "create"
//     and "index" (others 400 for the whole request). Per item: an invalid
//     index name 400 invalid_index_name_exception; with Options.NoAutoCreate
//     an index not in Options.Indexes 404 index_not_found_exception; a
//     document that is not a JSON object 400 document_parsing_exception; a
//     create of an _id the index already holds 409
//     version_conflict_engine_exception; else 201 (200 for an "index" that
//     overwrote). Options.Item can choose any item's status instead (a mix
//     of 201, 409, 429, 400, 404, 403, 503 in one answer). The answer is
//     200 {"took","errors","items":[…]} in request order, filtered by
//     filter_path (the forms "errors", "took", "items.*.<key>").
//   - POST /_mget and /<index>/_mget: {"docs":[{"_index","_id"}]} or
//     {"ids":[…]}, answered {"docs":[{"_index","_id","found","_source"}]}
//     in order; _source_includes keeps only the named top-level keys.
//     Principals in Options.NoRead get 403 security_exception.
//   - 413 above Options.MaxContentLength (bytes as received).
//   - GET /: 200 with the cluster's name and version (needs only
//     authentication).
//   - Faults: Options.Fault sees every request (with its decompressed
//     body) and can delay it, drop the connection, or answer with any
//     status, body and Retry-After instead (a whole-request 429 or 503, an
//     answer with the wrong number of items, a proxy's HTML page).
//
// Any other path is 400 "no handler found", as Elasticsearch answers. All
// accessors are safe for concurrent use.
package esfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/auditpipe/auditpipe/internal/fakehttp"
)

// Options configures a Server. The zero value allows anonymous access,
// creates indices on demand and has no faults.
type Options struct {
	// APIKeys are the valid encoded API keys; Users the valid basic
	// credentials (user -> password); Tokens the valid bearer tokens. All
	// empty: no authentication, anyone may write.
	APIKeys []string
	Users   map[string]string
	Tokens  []string
	// ReadOnly are principals (an API key, a user name or a token) that
	// authenticate but may not bulk-write: 403 for the whole request.
	ReadOnly []string
	// Indexes are the indices that exist. With NoAutoCreate, a document
	// for another index fails with 404 index_not_found_exception;
	// otherwise indices are created on demand.
	Indexes      []string
	NoAutoCreate bool
	// NoRead are principals that may write but not read: 403 for _mget.
	NoRead []string
	// MaxContentLength, if > 0, answers 413 to bodies longer than this
	// (as received, compressed or not).
	MaxContentLength int64
	// Item, if set, is called for every bulk item; a non-zero
	// ItemResult.Status is that item's answer instead of the normal
	// handling (nothing is stored for it unless Store is set).
	Item func(it *Item) ItemResult
	// Fault, if set, is called for every request before it is handled.
	Fault func(r *Request) Fault
	// Raw, if set, is asked first for every request (before its body is
	// read): an answer it returns is sent as it is, in place of the
	// protocol's own, and the request is neither handled nor recorded.
	// It gives the answers no real server sends on success: an HTML page
	// from a proxy, an empty 200, truncated JSON, a reply sent before the
	// request body was read (fakehttp.Raw.Early).
	Raw func(method, path string) *fakehttp.Raw
}

// Item is one bulk item as Options.Item sees it.
type Item struct {
	Request   int    // 1-based number of the request it came in
	Pos       int    // 0-based position in the request
	Action    string // "create" or "index"
	Index     string
	ID        string // "" if none was given
	Doc       []byte // the document line
	Principal string // the API key, user name or token; "" if anonymous
}

// ItemResult is an item's answer chosen by Options.Item.
type ItemResult struct {
	Status int    // HTTP status of the item; 0: handle normally
	Type   string // error.type (no error object if empty and Status < 300)
	Reason string // error.reason
	Store  bool   // with a 2xx Status, store the document too
}

// Request is what Options.Fault sees of a request, and what Requests
// returns.
type Request struct {
	N      int // 1-based number among all requests the server received
	Method string
	Path   string
	Query  string // the raw query
	Header http.Header
	Body   []byte // decompressed if it was gzip (nil if that failed)
}

// Fault is what to do with a request instead of, or before, handling it.
// The zero Fault handles the request normally.
type Fault struct {
	Delay      time.Duration // wait this long first (cut short if the client goes away)
	Drop       bool          // then close the connection without an answer
	Status     int           // then answer with this status instead of handling the request
	Body       string        // the answer's body (default: an Elasticsearch error object)
	RetryAfter string        // Retry-After header of that answer, if not empty
	Header     http.Header   // more headers of that answer
}

// Doc is a stored document.
type Doc struct {
	Index   string
	ID      string
	Source  string // the document line exactly as received (after gzip)
	Version int
}

// Server is a running fake Elasticsearch. Its embedded httptest.Server
// gives URL, Close, Certificate and Client.
type Server struct {
	*httptest.Server
	opts Options

	mu       sync.Mutex
	apiKeys  map[string]bool
	users    map[string]string
	tokens   map[string]bool
	docs     map[string]*Doc // index + "\x00" + id
	order    []string        // keys in first-creation order
	requests []Request
	nextID   int
}

// New starts a plain-HTTP fake on 127.0.0.1. Close it when done.
func New(opts Options) *Server { return start(opts, false) }

// NewTLS starts an HTTPS fake on 127.0.0.1 with httptest's self-signed
// certificate (Certificate returns it).
func NewTLS(opts Options) *Server { return start(opts, true) }

func start(opts Options, useTLS bool) *Server {
	s := &Server{opts: opts, docs: map[string]*Doc{}}
	s.SetAPIKeys(opts.APIKeys...)
	s.SetUsers(opts.Users)
	s.SetTokens(opts.Tokens...)
	s.Server = fakehttp.Start("esfake", http.HandlerFunc(s.serve), useTLS)
	return s
}

// SetAPIKeys replaces the valid API keys.
func (s *Server) SetAPIKeys(keys ...string) {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	s.mu.Lock()
	s.apiKeys = m
	s.mu.Unlock()
}

// SetUsers replaces the valid basic credentials.
func (s *Server) SetUsers(users map[string]string) {
	m := map[string]string{}
	for u, p := range users {
		m[u] = p
	}
	s.mu.Lock()
	s.users = m
	s.mu.Unlock()
}

// SetTokens replaces the valid bearer tokens.
func (s *Server) SetTokens(tokens ...string) {
	m := map[string]bool{}
	for _, t := range tokens {
		m[t] = true
	}
	s.mu.Lock()
	s.tokens = m
	s.mu.Unlock()
}

// Docs returns a copy of the stored documents, in the order they were
// first created.
func (s *Server) Docs() []Doc {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Doc, 0, len(s.order))
	for _, k := range s.order {
		out = append(out, *s.docs[k])
	}
	return out
}

// Doc returns the document index/id, if stored.
func (s *Server) Doc(index, id string) (Doc, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.docs[index+"\x00"+id]
	if !ok {
		return Doc{}, false
	}
	return *d, true
}

// Requests returns a copy of every request received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Reset forgets the documents and requests.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs, s.order, s.requests = map[string]*Doc{}, nil, nil
}

const maxBody = 256 << 20

// esError writes an Elasticsearch error answer.
func esError(w http.ResponseWriter, status int, typ, reason string) {
	cause := map[string]any{"type": typ, "reason": reason}
	writeJSON(w, status, map[string]any{
		"error":  map[string]any{"root_cause": []any{cause}, "type": typ, "reason": reason},
		"status": status,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.WriteHeader(status)
	w.Write(b)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.opts.Raw != nil {
		if a := s.opts.Raw(r.Method, r.URL.Path); a != nil {
			if !a.Early {
				io.Copy(io.Discard, r.Body)
			}
			a.Serve(w, r)
			return
		}
	}
	limit := int64(maxBody)
	if s.opts.MaxContentLength > 0 {
		limit = s.opts.MaxContentLength
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return // the client went away
	}
	tooLarge := int64(len(raw)) > limit
	data, badGzip := raw, false
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") && !tooLarge {
		if data, err = fakehttp.Gunzip(raw, maxBody); err != nil {
			data, badGzip = nil, true
		}
	}
	req := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: data}
	s.mu.Lock()
	req.N = len(s.requests) + 1
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	if s.opts.Fault != nil {
		f := s.opts.Fault(&req)
		if f.Delay > 0 && !fakehttp.Wait(r, f.Delay) {
			return
		}
		if f.Drop {
			panic(http.ErrAbortHandler) // net/http closes the connection and logs nothing
		}
		if f.Status != 0 {
			for k, v := range f.Header {
				w.Header()[k] = v
			}
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			if f.Body != "" {
				w.WriteHeader(f.Status)
				io.WriteString(w, f.Body)
				return
			}
			esError(w, f.Status, "fault", http.StatusText(f.Status))
			return
		}
	}

	path := strings.TrimSuffix(r.URL.Path, "/")
	var defaultIndex string
	switch {
	case path == "":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			esError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Incorrect HTTP method for uri [/], allowed: [GET, HEAD]")
			return
		}
		if _, ok := s.auth(w, r); !ok {
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"name": "esfake", "cluster_name": "esfake", "cluster_uuid": "esfake-0000",
			"version": map[string]any{"number": "8.15.0", "build_flavor": "default"},
			"tagline": "You Know, for Search",
		})
		return
	case path == "/_mget" || strings.HasSuffix(path, "/_mget") && strings.Count(path, "/") == 2:
		if r.Method != http.MethodPost && r.Method != http.MethodGet {
			esError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Incorrect HTTP method for uri ["+r.URL.Path+"], allowed: [GET, POST]")
			return
		}
		principal, ok := s.auth(w, r)
		if !ok {
			return
		}
		if principal != "" && slices.Contains(s.opts.NoRead, principal) {
			esError(w, http.StatusForbidden, "security_exception",
				"action [indices:data/read/mget[shard]] is unauthorized for user [esfake-user] with effective roles [writer], this action is granted by the index privileges [read,all]")
			return
		}
		s.mget(w, strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/_mget"), r.URL.Query().Get("_source_includes"), data)
		return
	case path == "/_bulk":
	case strings.HasSuffix(path, "/_bulk") && strings.Count(path, "/") == 2:
		defaultIndex = strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/_bulk")
	default:
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"error": fmt.Sprintf("no handler found for uri [%s] and method [%s]", r.URL.Path, r.Method), "status": 400})
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		esError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Incorrect HTTP method for uri ["+r.URL.Path+"], allowed: [POST, PUT]")
		return
	}
	principal, ok := s.auth(w, r)
	if !ok {
		return
	}
	if principal != "" && slices.Contains(s.opts.ReadOnly, principal) {
		esError(w, http.StatusForbidden, "security_exception",
			"action [indices:data/write/bulk] is unauthorized for user [esfake-user] with effective roles [viewer], this action is granted by the index privileges [create_doc,create,index,write,all]")
		return
	}
	if tooLarge {
		esError(w, http.StatusRequestEntityTooLarge, "content_too_long_exception",
			fmt.Sprintf("request content length exceeds the maximum of [%d] bytes", limit))
		return
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	if ct = strings.TrimSpace(strings.ToLower(ct)); ct != "application/json" && ct != "application/x-ndjson" {
		writeJSON(w, http.StatusNotAcceptable, map[string]any{
			"error": "Content-Type header [" + r.Header.Get("Content-Type") + "] is not supported", "status": 406})
		return
	}
	if badGzip {
		esError(w, http.StatusBadRequest, "parse_exception", "request body is not valid gzip")
		return
	}
	s.bulk(w, req.N, r.URL.Query().Get("filter_path"), defaultIndex, data, principal)
}

// auth checks the Authorization header and answers if it fails. It
// returns the principal ("" when anonymous access is in force).
func (s *Server) auth(w http.ResponseWriter, r *http.Request) (string, bool) {
	s.mu.Lock()
	open := len(s.apiKeys) == 0 && len(s.users) == 0 && len(s.tokens) == 0
	s.mu.Unlock()
	h := r.Header.Get("Authorization")
	if open {
		return "", true
	}
	fail := func(reason string) (string, bool) {
		w.Header().Set("WWW-Authenticate", `Basic realm="security" charset="UTF-8"`)
		w.Header().Add("WWW-Authenticate", `ApiKey`)
		w.Header().Add("WWW-Authenticate", `Bearer realm="security"`)
		esError(w, http.StatusUnauthorized, "security_exception", reason)
		return "", false
	}
	if h == "" {
		return fail("missing authentication credentials for REST request [" + r.URL.RequestURI() + "]")
	}
	scheme, cred, _ := strings.Cut(h, " ")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch strings.ToLower(scheme) {
	case "apikey":
		if s.apiKeys[cred] {
			return cred, true
		}
	case "bearer":
		if s.tokens[cred] {
			return cred, true
		}
	case "basic":
		b, err := base64.StdEncoding.DecodeString(cred)
		if err == nil {
			u, p, ok := strings.Cut(string(b), ":")
			if pw, known := s.users[u]; ok && known && pw == p {
				return u, true
			}
		}
	}
	return fail("unable to authenticate with provided credentials and anonymous access is not allowed for this request")
}

// bulkItem is one item of a bulk answer before filtering.
type bulkItem map[string]any

func (s *Server) bulk(w http.ResponseWriter, n int, filterPath, defaultIndex string, data []byte, principal string) {
	start := time.Now()
	if len(data) == 0 {
		esError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
		return
	}
	if data[len(data)-1] != '\n' {
		esError(w, http.StatusBadRequest, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
		return
	}
	lines := bytes.Split(data[:len(data)-1], []byte("\n"))
	type parsed struct {
		action, index, id string
		doc               []byte
	}
	var ops []parsed
	for i := 0; i < len(lines); i++ {
		if len(bytes.TrimSpace(lines[i])) == 0 {
			continue
		}
		var act map[string]map[string]any
		if err := json.Unmarshal(lines[i], &act); err != nil || len(act) != 1 {
			esError(w, http.StatusBadRequest, "illegal_argument_exception", fmt.Sprintf("Malformed action/metadata line [%d], expected a simple value for field [_index] but found something else", i+1))
			return
		}
		var op parsed
		var meta map[string]any
		for k, v := range act {
			op.action, meta = k, v
		}
		if op.action != "create" && op.action != "index" {
			esError(w, http.StatusBadRequest, "illegal_argument_exception", "Action/metadata line ["+strconv.Itoa(i+1)+"] contains an unknown parameter ["+op.action+"] for esfake")
			return
		}
		op.index = defaultIndex
		if v, ok := meta["_index"].(string); ok {
			op.index = v
		}
		if v, ok := meta["_id"].(string); ok {
			op.id = v
		}
		if i+1 >= len(lines) {
			esError(w, http.StatusBadRequest, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
			return
		}
		i++
		op.doc = lines[i]
		ops = append(ops, op)
	}
	items := make([]bulkItem, len(ops))
	errs := false
	for pos, op := range ops {
		it := bulkItem{"_index": op.index}
		var res ItemResult
		if s.opts.Item != nil {
			res = s.opts.Item(&Item{Request: n, Pos: pos, Action: op.action, Index: op.index, ID: op.id, Doc: op.doc, Principal: principal})
		}
		if res.Status != 0 {
			if res.Store && res.Status < 300 {
				op.id = s.store(op.index, op.id, op.doc, true)
			}
		} else {
			res = s.handle(&op.index, &op.id, op.action, op.doc)
		}
		if op.id != "" {
			it["_id"] = op.id
		}
		it["status"] = res.Status
		if res.Status >= 300 || res.Type != "" {
			errs = errs || res.Status >= 300
			it["error"] = map[string]any{"type": res.Type, "reason": res.Reason, "index": op.index}
		} else {
			it["result"] = "created"
			if res.Status == http.StatusOK {
				it["result"] = "updated"
			}
			it["_version"] = 1
		}
		items[pos] = bulkItem{op.action: it}
	}
	resp := map[string]any{"took": time.Since(start).Milliseconds(), "errors": errs, "items": items}
	writeJSON(w, http.StatusOK, filter(resp, filterPath))
}

// mget answers a multi-get: {"docs":[{"_index","_id"},...]} (or
// {"ids":[...]} under /<index>/_mget), each answered in order with found
// and, if found, _source (only the top-level keys in includes, a
// comma-separated list, if given).
func (s *Server) mget(w http.ResponseWriter, defaultIndex, includes string, data []byte) {
	var q struct {
		Docs []struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		} `json:"docs"`
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal(data, &q); err != nil || len(q.Docs)+len(q.IDs) == 0 {
		esError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: no documents to get;")
		return
	}
	for _, id := range q.IDs {
		q.Docs = append(q.Docs, struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}{ID: id})
	}
	keep := map[string]bool{}
	for _, k := range strings.Split(includes, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keep[k] = true
		}
	}
	var docs []any
	s.mu.Lock()
	for _, d := range q.Docs {
		if d.Index == "" {
			d.Index = defaultIndex
		}
		out := map[string]any{"_index": d.Index, "_id": d.ID}
		doc, ok := s.docs[d.Index+"\x00"+d.ID]
		out["found"] = ok
		if ok {
			var src map[string]json.RawMessage
			json.Unmarshal([]byte(doc.Source), &src)
			if len(keep) > 0 {
				for k := range src {
					if !keep[k] {
						delete(src, k)
					}
				}
			}
			out["_version"], out["_source"] = doc.Version, src
		}
		docs = append(docs, out)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"docs": docs})
}

// Put stores a document as if a client had created it (for a test that
// needs a store holding another chain's documents).
func (s *Server) Put(index, id, source string) { s.store(index, id, []byte(source), true) }

// handle applies one item normally and returns its answer.
func (s *Server) handle(index, id *string, action string, doc []byte) ItemResult {
	if err := validIndex(*index); err != "" {
		return ItemResult{Status: 400, Type: "invalid_index_name_exception", Reason: "Invalid index name [" + *index + "], " + err}
	}
	if s.opts.NoAutoCreate && !slices.Contains(s.opts.Indexes, *index) {
		return ItemResult{Status: 404, Type: "index_not_found_exception", Reason: "no such index [" + *index + "]"}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil || obj == nil {
		return ItemResult{Status: 400, Type: "document_parsing_exception", Reason: "[1:1] failed to parse: " + errText(err)}
	}
	s.mu.Lock()
	_, exists := s.docs[*index+"\x00"+*id]
	s.mu.Unlock()
	if exists && action == "create" {
		return ItemResult{Status: 409, Type: "version_conflict_engine_exception",
			Reason: "[" + *id + "]: version conflict, document already exists (current version [1])"}
	}
	*id = s.store(*index, *id, doc, action == "create")
	if exists {
		return ItemResult{Status: 200}
	}
	return ItemResult{Status: 201}
}

func errText(err error) string {
	if err == nil {
		return "not an object"
	}
	return err.Error()
}

// store keeps doc under index/id (an id is generated if empty) and returns
// the id.
func (s *Server) store(index, id string, doc []byte, create bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "" {
		s.nextID++
		id = fmt.Sprintf("esfake-%d", s.nextID)
	}
	k := index + "\x00" + id
	if d, ok := s.docs[k]; ok {
		if !create {
			d.Source, d.Version = string(doc), d.Version+1
		}
		return id
	}
	s.docs[k] = &Doc{Index: index, ID: id, Source: string(doc), Version: 1}
	s.order = append(s.order, k)
	return id
}

// validIndex returns why name is not a valid index name, or "".
func validIndex(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case strings.ToLower(name) != name:
		return "must be lowercase"
	case name == "." || name == "..":
		return `must not be '.' or '..'`
	case strings.ContainsAny(name[:1], "-_+"):
		return "must not start with '_', '-', or '+'"
	case len(name) > 255:
		return "index name is too long"
	case strings.ContainsAny(name, "\\/*?\"<>| ,#:"):
		return `must not contain the following characters [ , ", *, \, <, |, ,, >, /, ?, #, :]`
	}
	return ""
}

// filter applies a filter_path of the forms "errors", "took" and
// "items.*.<key>" to a bulk answer. An empty filter keeps everything.
func filter(resp map[string]any, fp string) map[string]any {
	if fp == "" {
		return resp
	}
	out := map[string]any{}
	itemKeys := map[string]bool{}
	for _, f := range strings.Split(fp, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "errors" || f == "took":
			out[f] = resp[f]
		case strings.HasPrefix(f, "items.*."):
			itemKeys[strings.TrimPrefix(f, "items.*.")] = true
		}
	}
	if len(itemKeys) == 0 {
		return out
	}
	var items []any
	for _, it := range resp["items"].([]bulkItem) {
		fi := bulkItem{}
		for action, v := range it {
			m := map[string]any{}
			for k, x := range v.(bulkItem) {
				if itemKeys[k] {
					m[k] = x
				}
			}
			if len(m) > 0 {
				fi[action] = m
			}
		}
		if len(fi) > 0 { // as Elasticsearch does: an item left empty disappears
			items = append(items, fi)
		}
	}
	if items != nil {
		out["items"] = items
	}
	return out
}
