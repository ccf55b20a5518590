// Package hecfake is a fake Splunk HTTP Event Collector for tests: an
// httptest server on 127.0.0.1 that speaks the HEC protocol as the Splunk
// documentation describes it. It is not Splunk. It indexes nothing and
// searches nothing; it keeps the events it accepted in memory, in arrival
// order, for the test to inspect.
//
// VictoriaLogs (see internal/vlogs) is the real store the project tests
// against. It accepts HEC events but checks no token, has no indexer
// acknowledgement, answers success to almost anything and has no fault
// modes. This fake covers that part of the protocol:
//
//   - Tokens: "Authorization: Splunk <token>". Missing header: 401 code 2;
//     another scheme: 401 code 3; an unknown token: 403 code 4; a disabled
//     token: 403 code 1. Valid tokens can be changed while it runs
//     (SetTokens), to test rotation.
//   - Bodies: Content-Encoding: gzip; JSON event objects concatenated with
//     optional whitespace, parsed one at a time as HEC does. An empty body
//     is 400 code 5. The first bad event stops the request with 400 and
//     "invalid-event-number": its zero-based position: code 6 for bad JSON,
//     a non-object, a bad time/host/source/sourcetype/index or a poison
//     event (Options.Poison); 12 for a missing "event"; 13 for a blank
//     one; 15 for nested "fields" values; 7 for an index outside
//     Options.AllowedIndexes. Whether the events before it are kept is
//     unconfirmed for Splunk, so it is an option (Options.DropBeforeInvalid).
//   - Size: 413 above Options.MaxContentLength (bytes as received).
//   - Indexer acknowledgement (Options.IndexerAck): event requests need a
//     channel (X-Splunk-Request-Channel or ?channel=) that is a GUID: 400
//     code 10 if missing, 11 if not a GUID; a 200 carries "ackId",
//     numbered per channel from 0. POST /services/collector/ack with
//     {"acks":[ids]} answers {"acks":{"<id>":bool}}, true once
//     Options.AckDelay has passed since the events arrived. Without
//     IndexerAck the ack endpoint answers 400 code 14.
//   - Health: GET /services/collector/health answers 200 code 17.
//   - Faults: Options.Fault sees every request (with its decompressed
//     body) and can delay it, drop the connection, or answer with any
//     status, HEC code, text and Retry-After instead.
//   - Raw (/services/collector/raw): the body is text, one event per
//     non-empty line ("\n" or "\r\n" ends a line), metadata from the
//     query (host, source, sourcetype, index). A channel is required (400
//     code 10 if missing, 11 if not a GUID) with or without IndexerAck, as
//     Splunk requires for raw. An empty body is 400 code 5, an index
//     outside AllowedIndexes 400 code 7, a Poison line 400 code 6 (raw
//     answers carry no invalid-event-number: nothing of the request is
//     kept).
//
// Endpoints: /services/collector, /services/collector/event and
// /services/collector/event/1.0 (events), /services/collector/raw,
// /services/collector/ack,
// /services/collector/health; anything else is 404. All accessors are
// safe for concurrent use.
package hecfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/auditpipe/auditpipe/internal/fakehttp"
)

// Options configures a Server. The zero value accepts any token, has
// indexer acknowledgement off and keeps the events before a bad one.
type Options struct {
	// Tokens are the valid tokens. Empty: any non-empty token is valid.
	Tokens []string
	// DisabledTokens answer 403 code 1 "Token disabled".
	DisabledTokens []string
	// AllowedIndexes, when not empty, are the only indexes an event may
	// name (an event without "index" goes to the token's default and is
	// allowed); another index fails the request with 400 code 7.
	AllowedIndexes []string
	// IndexerAck turns on indexer acknowledgement; AckDelay is how long
	// after its events arrive an ackId reports true.
	IndexerAck bool
	AckDelay   time.Duration
	// DropBeforeInvalid: when an event is bad, keep none of the request's
	// events. By default the events before the bad one are kept.
	DropBeforeInvalid bool
	// Poison, if set, rejects an event it returns true for with 400 code 6
	// "Invalid data format" at its position.
	Poison func(e *Event) bool
	// MaxContentLength, if > 0, answers 413 to bodies longer than this
	// (as received, compressed or not).
	MaxContentLength int64
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

// Request is what Options.Fault sees of a request.
type Request struct {
	N      int    // 1-based number of this request among all the server received
	Method string // "POST", "GET"
	Path   string // URL path
	Header http.Header
	Body   []byte // the body, decompressed if it was gzip (nil if that failed)
}

// Fault is what to do with a request instead of, or before, handling it.
// The zero Fault handles the request normally.
type Fault struct {
	Delay      time.Duration // wait this long first (cut short if the client goes away)
	Drop       bool          // then close the connection without an answer
	Status     int           // then answer with this status instead of handling the request
	Code       int           // HEC "code" of that answer
	Text       string        // HEC "text" of that answer (default: the status text)
	Body       string        // raw answer body instead of {"text","code"} (e.g. a proxy's HTML)
	RetryAfter string        // Retry-After header of that answer, if not empty
	Header     http.Header   // more headers of that answer (e.g. Location)
}

// Event is one event the server accepted.
type Event struct {
	Raw        string            // the event object exactly as received (after gzip)
	Event      string            // "event": the string itself, or the raw JSON of a non-string
	IsString   bool              // "event" was a JSON string
	Time       string            // "time" as sent (raw JSON), "" if absent
	Host       string            // "host", "" if absent
	Source     string            // "source"
	Sourcetype string            // "sourcetype"
	Index      string            // "index"
	Fields     map[string]any    // "fields", decoded (strings, numbers, []any of strings)
	Token      string            // the token of the request
	Channel    string            // the request's channel, "" if none
	Gzip       bool              // the request body was gzip-compressed
	Header     map[string]string // selected request headers: Content-Type, User-Agent
	Endpoint   string            // "event" or "raw"
}

// Counts are the requests the server received, by endpoint.
type Counts struct {
	Total  int // every request, including 404s
	Event  int // to an event endpoint
	Raw    int // to the raw endpoint
	Ack    int // to the ack endpoint
	Health int // to the health endpoint
}

// Server is a running fake HEC. Its embedded httptest.Server gives URL,
// Close, Certificate and Client.
type Server struct {
	*httptest.Server
	opts Options

	mu       sync.Mutex
	tokens   map[string]bool
	disabled map[string]bool
	events   []Event
	counts   Counts
	acks     map[string][]time.Time // channel -> ackId -> when it turns true
}

// New starts a plain-HTTP fake on 127.0.0.1. Close it when done.
func New(opts Options) *Server { return start(opts, false) }

// NewTLS starts an HTTPS fake on 127.0.0.1 with httptest's self-signed
// certificate (Certificate returns it).
func NewTLS(opts Options) *Server { return start(opts, true) }

func start(opts Options, useTLS bool) *Server {
	s := &Server{opts: opts, acks: map[string][]time.Time{}}
	s.SetTokens(opts.Tokens...)
	s.disabled = map[string]bool{}
	for _, t := range opts.DisabledTokens {
		s.disabled[t] = true
	}
	s.Server = fakehttp.Start("hecfake", http.HandlerFunc(s.serve), useTLS)
	return s
}

// SetTokens replaces the valid tokens (none: any token is valid).
func (s *Server) SetTokens(valid ...string) {
	m := map[string]bool{}
	for _, t := range valid {
		m[t] = true
	}
	s.mu.Lock()
	s.tokens = m
	s.mu.Unlock()
}

// Events returns a copy of the accepted events, in arrival order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// EventStrings returns the "event" value of every accepted event, in
// arrival order.
func (s *Server) EventStrings() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.events))
	for i, e := range s.events {
		out[i] = e.Event
	}
	return out
}

// Counts returns the request counts so far.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Reset forgets the accepted events, counts and acks.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events, s.counts, s.acks = nil, Counts{}, map[string][]time.Time{}
}

// HEC texts, as Splunk words them.
var texts = map[int]string{
	0:  "Success",
	1:  "Token disabled",
	2:  "Token is required",
	3:  "Invalid authorization",
	4:  "Invalid token",
	5:  "No data",
	6:  "Invalid data format",
	7:  "Incorrect index",
	8:  "Internal server error",
	9:  "Server is busy",
	10: "Data channel is missing",
	11: "Invalid data channel",
	12: "Event field is required",
	13: "Event field cannot be blank",
	14: "ACK is disabled",
	15: "Error in handling indexed fields",
	17: "HEC is healthy",
}

func answer(w http.ResponseWriter, status, code int) {
	writeJSON(w, status, map[string]any{"text": texts[code], "code": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	w.Write(b)
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
	var kind string
	switch r.URL.Path {
	case "/services/collector", "/services/collector/event", "/services/collector/event/1.0":
		kind = "event"
	case "/services/collector/raw", "/services/collector/raw/1.0":
		kind = "raw"
	case "/services/collector/ack":
		kind = "ack"
	case "/services/collector/health", "/services/collector/health/1.0":
		kind = "health"
	}
	s.mu.Lock()
	s.counts.Total++
	n := s.counts.Total
	switch kind {
	case "event":
		s.counts.Event++
	case "raw":
		s.counts.Raw++
	case "ack":
		s.counts.Ack++
	case "health":
		s.counts.Health++
	}
	s.mu.Unlock()

	limit := int64(maxBody)
	if s.opts.MaxContentLength > 0 {
		limit = s.opts.MaxContentLength
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return // the client went away
	}
	tooLarge := int64(len(raw)) > limit
	gz := strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip")
	data := raw
	badGzip := false
	if gz && !tooLarge {
		data, err = fakehttp.Gunzip(raw, maxBody)
		if err != nil {
			data, badGzip = nil, true
		}
	}

	if s.opts.Fault != nil {
		f := s.opts.Fault(&Request{N: n, Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: data})
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
			text := f.Text
			if text == "" {
				text = http.StatusText(f.Status)
			}
			writeJSON(w, f.Status, map[string]any{"text": text, "code": f.Code})
			return
		}
	}

	switch kind {
	case "health":
		answer(w, http.StatusOK, 17)
		return
	case "":
		writeJSON(w, http.StatusNotFound, map[string]any{"text": "The requested URL was not found on this server.", "code": 404})
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"text": "Method Not Allowed", "code": 405})
		return
	}
	token, ok := s.auth(w, r)
	if !ok {
		return
	}
	if tooLarge {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{
			"text": fmt.Sprintf("Content-Length of %d too large (maximum is %d)", max(r.ContentLength, int64(len(raw))), limit)})
		return
	}
	channel := r.Header.Get("X-Splunk-Request-Channel")
	if channel == "" {
		channel = r.URL.Query().Get("channel")
	}
	if s.opts.IndexerAck || kind == "ack" || kind == "raw" {
		if !s.opts.IndexerAck && kind == "ack" {
			answer(w, http.StatusBadRequest, 14)
			return
		}
		if channel == "" {
			answer(w, http.StatusBadRequest, 10)
			return
		}
		if !guidRE.MatchString(channel) {
			answer(w, http.StatusBadRequest, 11)
			return
		}
	}
	if badGzip {
		answer(w, http.StatusBadRequest, 6)
		return
	}
	if kind == "ack" {
		s.ack(w, channel, data)
		return
	}
	if kind == "raw" {
		s.ingestRaw(w, r, data, token, channel, gz)
		return
	}
	s.ingest(w, r, data, token, channel, gz)
}

// ingestRaw stores each non-empty line of a raw body as an event, or none.
func (s *Server) ingestRaw(w http.ResponseWriter, r *http.Request, data []byte, token, channel string, gz bool) {
	if len(bytes.TrimSpace(data)) == 0 {
		answer(w, http.StatusBadRequest, 5)
		return
	}
	q := r.URL.Query()
	hdr := map[string]string{"Content-Type": r.Header.Get("Content-Type"), "User-Agent": r.Header.Get("User-Agent")}
	if ix := q.Get("index"); len(s.opts.AllowedIndexes) > 0 && ix != "" && !slices.Contains(s.opts.AllowedIndexes, ix) {
		answer(w, http.StatusBadRequest, 7)
		return
	}
	var batch []Event
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		e := Event{Raw: line, Event: line, IsString: true, Host: q.Get("host"), Source: q.Get("source"),
			Sourcetype: q.Get("sourcetype"), Index: q.Get("index"), Token: token, Channel: channel, Gzip: gz,
			Header: hdr, Endpoint: "raw"}
		if s.opts.Poison != nil && s.opts.Poison(&e) {
			answer(w, http.StatusBadRequest, 6)
			return
		}
		batch = append(batch, e)
	}
	s.store(batch)
	if !s.opts.IndexerAck {
		answer(w, http.StatusOK, 0)
		return
	}
	s.mu.Lock()
	id := len(s.acks[channel])
	s.acks[channel] = append(s.acks[channel], time.Now().Add(s.opts.AckDelay))
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"text": "Success", "code": 0, "ackId": id})
}

var guidRE = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// auth checks the Authorization header and answers if it fails.
func (s *Server) auth(w http.ResponseWriter, r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		answer(w, http.StatusUnauthorized, 2)
		return "", false
	}
	scheme, token, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Splunk") || token == "" {
		answer(w, http.StatusUnauthorized, 3)
		return "", false
	}
	s.mu.Lock()
	valid := len(s.tokens) == 0 || s.tokens[token]
	disabled := s.disabled[token]
	s.mu.Unlock()
	switch {
	case disabled:
		answer(w, http.StatusForbidden, 1)
		return "", false
	case !valid:
		answer(w, http.StatusForbidden, 4)
		return "", false
	}
	return token, true
}

// ingest parses the concatenated events and stores them.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request, data []byte, token, channel string, gz bool) {
	if len(bytes.TrimSpace(data)) == 0 {
		answer(w, http.StatusBadRequest, 5)
		return
	}
	hdr := map[string]string{"Content-Type": r.Header.Get("Content-Type"), "User-Agent": r.Header.Get("User-Agent")}
	var batch []Event
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for i := 0; ; i++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			break
		}
		code := 6
		var e Event
		if err == nil {
			e, code = s.parseEvent(raw)
		}
		if code != 0 {
			if !s.opts.DropBeforeInvalid {
				s.store(batch)
			}
			writeJSON(w, http.StatusBadRequest, map[string]any{"text": texts[code], "code": code, "invalid-event-number": i})
			return
		}
		e.Token, e.Channel, e.Gzip, e.Header, e.Endpoint = token, channel, gz, hdr, "event"
		batch = append(batch, e)
	}
	s.store(batch)
	if !s.opts.IndexerAck {
		answer(w, http.StatusOK, 0)
		return
	}
	s.mu.Lock()
	id := len(s.acks[channel])
	s.acks[channel] = append(s.acks[channel], time.Now().Add(s.opts.AckDelay))
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"text": "Success", "code": 0, "ackId": id})
}

func (s *Server) store(batch []Event) {
	s.mu.Lock()
	s.events = append(s.events, batch...)
	s.mu.Unlock()
}

// parseEvent checks one event object; code 0 means it is good.
func (s *Server) parseEvent(raw json.RawMessage) (Event, int) {
	e := Event{Raw: string(raw)}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return e, 6 // not an object
	}
	ev, ok := m["event"]
	if !ok {
		return e, 12
	}
	switch {
	case string(ev) == "null":
		return e, 13
	case ev[0] == '"':
		if err := json.Unmarshal(ev, &e.Event); err != nil {
			return e, 6
		}
		if e.Event == "" {
			return e, 13
		}
		e.IsString = true
	default:
		e.Event = string(ev)
	}
	if t, ok := m["time"]; ok {
		e.Time = string(t)
		if !validTime(t) {
			return e, 6
		}
	}
	for key, dst := range map[string]*string{"host": &e.Host, "source": &e.Source, "sourcetype": &e.Sourcetype, "index": &e.Index} {
		if v, ok := m[key]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return e, 6
			}
		}
	}
	if f, ok := m["fields"]; ok {
		var fields map[string]any
		if err := json.Unmarshal(f, &fields); err != nil {
			return e, 15
		}
		for _, v := range fields {
			switch v := v.(type) {
			case string, float64, bool:
			case []any:
				for _, x := range v {
					if _, ok := x.(string); !ok {
						return e, 15
					}
				}
			default:
				return e, 15 // nested object or null
			}
		}
		e.Fields = fields
	}
	if len(s.opts.AllowedIndexes) > 0 && e.Index != "" && !slices.Contains(s.opts.AllowedIndexes, e.Index) {
		return e, 7
	}
	if s.opts.Poison != nil && s.opts.Poison(&e) {
		return e, 6
	}
	return e, 0
}

// validTime reports whether t is epoch seconds: a number or a string
// holding one.
func validTime(t json.RawMessage) bool {
	var v any
	if err := json.Unmarshal(t, &v); err != nil {
		return false
	}
	switch v := v.(type) {
	case float64:
		return v >= 0
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return err == nil && f >= 0
	}
	return false
}

// ack answers an ack poll.
func (s *Server) ack(w http.ResponseWriter, channel string, data []byte) {
	var q struct {
		Acks []int64 `json:"acks"`
	}
	if err := json.Unmarshal(data, &q); err != nil {
		answer(w, http.StatusBadRequest, 6)
		return
	}
	now := time.Now()
	out := map[string]bool{}
	s.mu.Lock()
	due := s.acks[channel]
	for _, id := range q.Acks {
		out[strconv.FormatInt(id, 10)] = id >= 0 && id < int64(len(due)) && !now.Before(due[id])
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"acks": out})
}
