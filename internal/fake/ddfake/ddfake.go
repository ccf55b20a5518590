// Package ddfake is a fake Datadog logs intake for tests: an httptest
// server on 127.0.0.1 that speaks the Logs API v2 and the key validation
// endpoint as the Datadog documentation describes them. It is not
// Datadog: it indexes and searches nothing; it keeps the logs it accepted
// in memory, in arrival order, for the test to inspect.
//
// VictoriaLogs (see internal/vlogs) is the real store the project tests
// against. It checks no API key, answers {} to the key check, accepts any
// size up to 64 MB and has no fault modes. This fake covers that part of
// the protocol:
//
//   - The key: header DD-API-KEY. Missing: 401 {"errors":["Unauthorized"]};
//     not among Options.APIKeys (when set): 403 {"errors":["Forbidden"]}.
//     SetAPIKeys changes them while it runs, to test rotation.
//   - POST /api/v2/logs: Content-Encoding gzip accepted; the body is a
//     JSON array of log objects (a single object too); anything else is
//     400. Options.Poison rejects the request with 400 when it returns
//     true for a log (the logs before it are kept unless
//     Options.DropBeforeBad). Above Options.MaxBytes uncompressed bytes
//     (default 5,000,000) or Options.MaxLogs logs (default 1000): 413. A
//     log over Options.TruncateAt bytes of message (default 1,000,000) is
//     accepted with 202 and its message cut, as Datadog documents: the
//     hazard the sink must avoid. Success is 202 {}.
//   - GET /api/v1/validate: 200 {"valid":true} for a good key, 403
//     {"errors":["Forbidden"]} otherwise.
//   - Faults: Options.Fault sees every request (with its decompressed
//     body) and can delay it, drop the connection, or answer with any
//     status, body and Retry-After instead (429 with Retry-After, 500,
//     503, 408).
//
// Not modelled: the 18-hour timestamp window, JSON parsing of messages,
// tag limits. Any other path is 404. All accessors are safe for
// concurrent use.
package ddfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/auditpipe/auditpipe/internal/fakehttp"
)

// Defaults for Options.
const (
	DefaultMaxBytes   = 5_000_000
	DefaultMaxLogs    = 1000
	DefaultTruncateAt = 1_000_000
)

// Options configures a Server. The zero value accepts any non-empty key.
type Options struct {
	// APIKeys are the valid keys. Empty: any non-empty key is valid.
	APIKeys []string
	// Poison, if set, fails a request with 400 at the first log it
	// returns true for.
	Poison func(l *Log) bool
	// DropBeforeBad: when a request fails with 400, keep none of its logs.
	// By default the logs before the bad one are kept (as VictoriaLogs
	// does; unconfirmed for Datadog).
	DropBeforeBad bool
	// MaxBytes (uncompressed body) and MaxLogs bound a request: 413 above.
	MaxBytes int
	MaxLogs  int
	// TruncateAt is the message length beyond which a log is cut.
	TruncateAt int
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

// Request is what Options.Fault sees of a request, and what Requests
// returns.
type Request struct {
	N      int // 1-based number among all requests the server received
	Method string
	Path   string
	Header http.Header
	Body   []byte // decompressed if it was gzip (nil if that failed)
}

// Fault is what to do with a request instead of, or before, handling it.
// The zero Fault handles the request normally.
type Fault struct {
	Delay      time.Duration // wait this long first (cut short if the client goes away)
	Drop       bool          // then close the connection without an answer
	Status     int           // then answer with this status instead of handling the request
	Body       string        // the answer's body (default {"errors":["<status text>"]})
	RetryAfter string        // Retry-After header of that answer, if not empty
	Header     http.Header   // more headers of that answer
}

// Log is one log the server accepted.
type Log struct {
	Raw       string            // the log object exactly as received (after gzip)
	Message   string            // "message" if it is a string
	Truncated bool              // the message was cut at TruncateAt
	Attrs     map[string]any    // every member, decoded (numbers as json.Number)
	Key       string            // the API key of the request
	Header    map[string]string // Content-Type and Content-Encoding of the request
}

// Server is a running fake intake. Its embedded httptest.Server gives
// URL, Close, Certificate and Client.
type Server struct {
	*httptest.Server
	opts Options

	mu       sync.Mutex
	keys     map[string]bool
	logs     []Log
	requests []Request
}

// New starts a plain-HTTP fake on 127.0.0.1. Close it when done.
func New(opts Options) *Server { return start(opts, false) }

// NewTLS starts an HTTPS fake on 127.0.0.1 with httptest's self-signed
// certificate (Certificate returns it).
func NewTLS(opts Options) *Server { return start(opts, true) }

func start(opts Options, useTLS bool) *Server {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxLogs <= 0 {
		opts.MaxLogs = DefaultMaxLogs
	}
	if opts.TruncateAt <= 0 {
		opts.TruncateAt = DefaultTruncateAt
	}
	s := &Server{opts: opts}
	s.SetAPIKeys(opts.APIKeys...)
	s.Server = fakehttp.Start("ddfake", http.HandlerFunc(s.serve), useTLS)
	return s
}

// SetAPIKeys replaces the valid keys (none: any non-empty key is valid).
func (s *Server) SetAPIKeys(keys ...string) {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	s.mu.Lock()
	s.keys = m
	s.mu.Unlock()
}

// Logs returns a copy of the accepted logs, in arrival order.
func (s *Server) Logs() []Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.logs)
}

// Messages returns the message of every accepted log, in arrival order.
func (s *Server) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.logs))
	for i, l := range s.logs {
		out[i] = l.Message
	}
	return out
}

// Requests returns a copy of every request received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Reset forgets the accepted logs and requests.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs, s.requests = nil, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func errorsAnswer(w http.ResponseWriter, status int, msgs ...string) {
	writeJSON(w, status, map[string]any{"errors": msgs})
}

const maxBody = 256 << 20

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
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return // the client went away
	}
	data, badGzip := raw, false
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		if data, err = fakehttp.Gunzip(raw, maxBody); err != nil {
			data, badGzip = nil, true
		}
	}
	req := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: data}
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
			errorsAnswer(w, f.Status, http.StatusText(f.Status))
			return
		}
	}

	switch r.URL.Path {
	case "/api/v1/validate":
		if r.Method != http.MethodGet {
			errorsAnswer(w, http.StatusMethodNotAllowed, "Method Not Allowed")
			return
		}
		if !s.validKey(r.Header.Get("DD-API-KEY")) {
			errorsAnswer(w, http.StatusForbidden, "Forbidden")
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"valid": true})
	case "/api/v2/logs":
		if r.Method != http.MethodPost {
			errorsAnswer(w, http.StatusMethodNotAllowed, "Method Not Allowed")
			return
		}
		key := r.Header.Get("DD-API-KEY")
		if key == "" {
			errorsAnswer(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		if !s.validKey(key) {
			errorsAnswer(w, http.StatusForbidden, "Forbidden")
			return
		}
		if badGzip {
			badRequest(w, "malformed gzip body")
			return
		}
		s.ingest(w, r, data, key)
	default:
		errorsAnswer(w, http.StatusNotFound, "Not Found")
	}
}

func badRequest(w http.ResponseWriter, detail string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []any{
		map[string]string{"status": "400", "title": "Bad Request", "detail": detail}}})
}

func (s *Server) validKey(k string) bool {
	if k == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys) == 0 || s.keys[k]
}

func (s *Server) ingest(w http.ResponseWriter, r *http.Request, data []byte, key string) {
	if len(data) > s.opts.MaxBytes {
		errorsAnswer(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request Entity Too Large: %d bytes over the limit of %d", len(data), s.opts.MaxBytes))
		return
	}
	trimmed := bytes.TrimSpace(data)
	var items []json.RawMessage
	switch {
	case len(trimmed) > 0 && trimmed[0] == '{':
		items = []json.RawMessage{trimmed}
	default:
		if err := json.Unmarshal(trimmed, &items); err != nil {
			badRequest(w, "the body is not a JSON array of logs: "+err.Error())
			return
		}
	}
	if len(items) > s.opts.MaxLogs {
		errorsAnswer(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request Entity Too Large: %d logs over the limit of %d", len(items), s.opts.MaxLogs))
		return
	}
	hdr := map[string]string{"Content-Type": r.Header.Get("Content-Type"), "Content-Encoding": r.Header.Get("Content-Encoding")}
	var batch []Log
	for i, it := range items {
		l := Log{Raw: string(it), Key: key, Header: hdr}
		dec := json.NewDecoder(bytes.NewReader(it))
		dec.UseNumber()
		if err := dec.Decode(&l.Attrs); err != nil || l.Attrs == nil {
			s.fail(w, batch, fmt.Sprintf("log %d is not a JSON object", i))
			return
		}
		if m, ok := l.Attrs["message"].(string); ok {
			if len(m) > s.opts.TruncateAt {
				m, l.Truncated = m[:s.opts.TruncateAt], true
			}
			l.Message = m
		}
		if s.opts.Poison != nil && s.opts.Poison(&l) {
			s.fail(w, batch, fmt.Sprintf("log %d was rejected", i))
			return
		}
		batch = append(batch, l)
	}
	s.store(batch)
	writeJSON(w, http.StatusAccepted, map[string]any{})
}

// fail answers 400, keeping the logs before the bad one unless told not to.
func (s *Server) fail(w http.ResponseWriter, before []Log, detail string) {
	if !s.opts.DropBeforeBad {
		s.store(before)
	}
	badRequest(w, detail)
}

func (s *Server) store(batch []Log) {
	s.mu.Lock()
	s.logs = append(s.logs, batch...)
	s.mu.Unlock()
}
