package splunk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// HEC response codes this sink tells apart (the rest are classified by
// HTTP status).
const (
	codeNoData         = 5
	codeInvalidFormat  = 6
	codeIncorrectIndex = 7
	codeNoChannel      = 10
	codeBadChannel     = 11
	codeNoEvent        = 12
	codeBlankEvent     = 13
	codeAckDisabled    = 14
	codeFieldsError    = 15
)

const (
	maxResponse = 64 << 10            // response bytes read and parsed
	maxMsg      = httpsink.MaxMessage // response text kept in an error
)

var parserPool fastjson.ParserPool

// reply is an HTTP response from HEC, read and parsed.
type reply struct {
	status     int
	header     http.Header
	text       string // "text", or the raw body if it is not HEC JSON
	code       int    // "code", -1 if absent
	invalid    int    // "invalid-event-number", -1 if absent
	ackID      int64  // "ackId", -1 if absent
	body       []byte
	tokens     []string // tokens sent, to scrub from messages
	refreshErr error    // a failed Token.Refresh after 401/403
	object     bool     // the body is a JSON object
	raw        httpsink.Reply
}

// hecSuccess is HEC's success answer to an event request.
const hecSuccess = `HTTP 200 {"text":"Success","code":0}`

// notSuccess says why a 2xx reply to an event request is not HEC's
// success answer, "" if it is one.
func (r *reply) notSuccess() string {
	switch {
	case !r.raw.BodySent():
		return "early" // httpsink.Unexpected words it
	case r.status != http.StatusOK:
		return fmt.Sprintf("HEC answers 200 to events it took, not %d", r.status)
	case len(r.body) == 0:
		return "an empty body"
	case !r.object:
		return "the body is not a JSON object"
	case r.code < 0:
		return `no "code" in the body`
	case r.code != 0:
		return fmt.Sprintf("code %d, not 0", r.code)
	}
	return ""
}

// Send implements sink.Sink: one HEC request for all records, less those
// too large for VictoriaLogs when it is VictoriaLogs that answers
// (Poison, "too large": it would drop them and answer success).
func (s *Sink) Send(ctx context.Context, records []sink.Record) (sink.Result, error) {
	return httpsink.SendKeepingVictoriaLogs(ctx, records, s.victoriaLogs, s.send)
}

// victoriaLogs reports whether VictoriaLogs answers at the URL: known from
// earlier answers, or asked with a health check (no token).
func (s *Sink) victoriaLogs(ctx context.Context) (bool, error) {
	if known, vl := s.store.Known(); known {
		return vl, nil
	}
	if _, err := s.do(ctx, http.MethodGet, s.healthURL, body{}, ""); err != nil {
		return false, err
	}
	_, vl := s.store.Known()
	return vl, nil
}

// send is Send for records that may all go.
func (s *Sink) send(ctx context.Context, records []sink.Record) (sink.Result, error) {
	res := sink.NewResult(len(records))
	if len(records) == 0 {
		return res, nil
	}
	if s.closed.Load() {
		return res, ErrClosed
	}
	b, err := encodeRouted(s.meta, s.cfg.IndexFor, records, s.cfg.Gzip)
	if err != nil {
		return res, fmt.Errorf("splunk: compress body: %w", err)
	}
	r, err := s.doAuth(ctx, http.MethodPost, s.eventURL, b)
	if err != nil {
		return res, err
	}
	if r.status/100 == 2 {
		if why := r.notSuccess(); why != "" {
			return res, httpsink.Unexpected(&r.raw, "HEC", hecSuccess, why, r.tokens, "[token]")
		}
		if !s.cfg.IndexerAck {
			return res.All(sink.Delivered), nil
		}
		if r.ackID < 0 {
			return res, s.errf(r, sink.Config, "no ackId in the response although --indexer-ack is on: "+
				"enable indexer acknowledgement on the HEC token, or drop --indexer-ack")
		}
		if err := s.waitAck(ctx, r.ackID); err != nil {
			return res, err
		}
		return res.All(sink.Delivered), nil
	}
	return s.classify(r, b, records, res)
}

// classify turns a non-2xx reply to an event request into a Result and error.
func (s *Sink) classify(r *reply, b body, records []sink.Record, res sink.Result) (sink.Result, error) {
	n := len(res.Status)
	switch r.status {
	case http.StatusBadRequest:
		switch r.code {
		case codeInvalidFormat, codeNoEvent, codeBlankEvent, codeFieldsError:
			if r.invalid < 0 || r.invalid >= n {
				return res, s.errf(r, sink.BadRequest, "")
			}
			if !s.cfg.IndexerAck {
				for i := 0; i < r.invalid; i++ {
					res.Status[i] = sink.Delivered
				}
			}
			res.Status[r.invalid] = sink.Poison
			res.Reason[r.invalid] = fmt.Sprintf("HEC code %d: %s", r.code, s.clean(r, r.text))
			return res, nil
		case codeIncorrectIndex:
			return res, s.errf(r, sink.Config, "index "+s.indexNote(records, r.invalid)+" is not allowed for this token or does not exist")
		case codeNoChannel, codeBadChannel:
			return res, s.errf(r, sink.Config, s.channelAdvice())
		case codeAckDisabled:
			return res, s.errf(r, sink.Config, "indexer acknowledgement is disabled for this token: enable it on the token, or drop --indexer-ack")
		}
		return res, s.errf(r, sink.BadRequest, "")
	case http.StatusUnauthorized, http.StatusForbidden:
		return res, s.errf(r, sink.Config, s.tokenAdvice(r))
	case http.StatusRequestEntityTooLarge:
		return res, s.errf(r, sink.TooLarge, fmt.Sprintf("request of %d bytes (%d uncompressed) too large", len(b.data), b.raw))
	}
	return res, s.statusError(r)
}

// indexNote names the index HEC refused with code 7: the configured one,
// or with routing the index of event invalid (HEC's invalid-event-number),
// or, without a usable position, every index of the request.
func (s *Sink) indexNote(records []sink.Record, invalid int) string {
	name := func(ix string) string {
		if ix == "" {
			return "the token's default index"
		}
		return strconv.Quote(ix)
	}
	if s.cfg.IndexFor == nil {
		return name(s.cfg.Index)
	}
	if invalid >= 0 && invalid < len(records) {
		return name(s.cfg.IndexFor(&records[invalid])) + fmt.Sprintf(" (of event %d, seq %d, tenant %q)", invalid, records[invalid].Seq, records[invalid].TenantID)
	}
	var all []string
	seen := map[string]bool{}
	for i := range records {
		if ix := s.cfg.IndexFor(&records[i]); !seen[ix] {
			seen[ix] = true
			all = append(all, name(ix))
		}
	}
	if len(all) > 8 {
		all = append(all[:8], fmt.Sprintf("%d more", len(all)-8))
	}
	return "(one of " + strings.Join(all, ", ") + ")"
}

// statusError classifies the statuses every endpoint shares.
func (s *Sink) statusError(r *reply) *sink.Error {
	switch {
	case r.status == http.StatusRequestTimeout, r.status == http.StatusTooManyRequests, r.status >= 500:
		e := s.errf(r, sink.Retryable, "")
		e.RetryAfter = retryAfter(r.header.Get("Retry-After"), time.Now())
		return e
	case r.status/100 == 3:
		loc := r.header.Get("Location")
		if u, err := url.Parse(loc); err == nil {
			loc = u.Redacted()
		}
		return s.errf(r, sink.Config, fmt.Sprintf("redirected to %q: redirects are not followed (the token would go along); set URL to the final endpoint", loc))
	case r.status == http.StatusNotFound:
		return s.errf(r, sink.Config, "no HEC endpoint at "+s.display+": check the URL and that HEC is enabled")
	case r.status == http.StatusBadRequest:
		return s.errf(r, sink.BadRequest, "")
	}
	return s.errf(r, sink.Config, "")
}

func (s *Sink) tokenAdvice(r *reply) string {
	msg := "the HEC token from " + s.cfg.Token.String() + " was refused: check that it exists, is enabled and allows this index"
	msg += httpsink.RefreshNote(r.refreshErr)
	return msg
}

func (s *Sink) channelAdvice() string {
	if s.cfg.Channel == "" {
		return "this token has indexer acknowledgement enabled and needs a channel: add --indexer-ack (or disable acknowledgement on the token)"
	}
	return "channel " + s.cfg.Channel + " (--channel) was refused: give another GUID, or drop --channel to have one generated"
}

// errf builds a *sink.Error for r with an explanation before the HEC text.
func (s *Sink) errf(r *reply, c sink.Class, explain string) *sink.Error {
	msg := httpsink.Explain(explain, "HEC", s.clean(r, r.text))
	return &sink.Error{Class: c, HTTPStatus: r.status, Code: r.code, Msg: msg}
}

// clean scrubs the tokens from text, keeps it on one line and cuts it to
// maxMsg bytes. Scrubbing comes first, so a cut cannot leave part of a
// token behind.
func (s *Sink) clean(r *reply, text string) string {
	return httpsink.Clean(text, r.tokens, "[token]")
}

// doAuth sends a request with the token and, on 401/403, re-resolves the
// token and, if it changed, sends the request once more with the new one.
// It compares the token it sent with the current one rather than trusting
// Refresh's changed, so concurrent requests that all failed with the old
// token all retry.
func (s *Sink) doAuth(ctx context.Context, method, u string, b body) (*reply, error) {
	tok, err := s.cfg.Token.Get(ctx)
	if err != nil {
		return nil, &sink.Error{Class: sink.Config, Code: -1, Msg: "read HEC token: " + err.Error()}
	}
	r, err := s.do(ctx, method, u, b, tok)
	if err != nil || (r.status != http.StatusUnauthorized && r.status != http.StatusForbidden) {
		return r, err
	}
	if _, err := s.cfg.Token.Refresh(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.refreshErr = err
		return r, nil
	}
	cur, err := s.cfg.Token.Get(ctx)
	if err != nil || cur == tok {
		return r, nil
	}
	r2, err := s.do(ctx, method, u, b, cur)
	if err != nil {
		return nil, err
	}
	r2.tokens = append(r2.tokens, tok)
	return r2, nil
}

// do sends one request and reads the reply. A transport failure comes
// back as a Retryable *sink.Error, or as ctx.Err() when ctx is done.
func (s *Sink) do(ctx context.Context, method, u string, b body, tok string) (*reply, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := httpsink.NewRequest(rctx, method, u, b.data, b.gzip, "application/json")
	if err != nil {
		return nil, fmt.Errorf("splunk: build request: %w", err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Splunk "+tok)
	}
	if s.cfg.Channel != "" {
		req.Header.Set("X-Splunk-Request-Channel", s.cfg.Channel)
	}
	r := &reply{tokens: []string{tok}, code: -1, invalid: -1, ackID: -1}
	rep, err := httpsink.RoundTrip(s.client, req, maxResponse, s.cfg.Timeout)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &sink.Error{Class: sink.Retryable, Code: -1, Msg: s.clean(r, err.Error())}
	}
	r.status, r.header, r.body, r.raw = rep.Status, rep.Header, rep.Body, rep
	s.store.Saw(rep.Status, rep.Header)
	r.parse()
	return r, nil
}

// parse fills text, code, invalid and ackID from the body. A body that is
// not a JSON object (a proxy's HTML page) becomes the text as it is.
func (r *reply) parse() {
	p := parserPool.Get()
	defer parserPool.Put(p)
	v, err := p.ParseBytes(r.body)
	if err != nil || v.Type() != fastjson.TypeObject {
		r.text = string(r.body)
		return
	}
	r.object = true
	r.text = string(v.GetStringBytes("text"))
	if c := v.Get("code"); c != nil {
		if n, err := c.Int(); err == nil {
			r.code = n
		}
	}
	if c := v.Get("invalid-event-number"); c != nil {
		if n, err := c.Int(); err == nil && n >= 0 {
			r.invalid = n
		}
	}
	if c := v.Get("ackId"); c != nil {
		if n, err := c.Int64(); err == nil && n >= 0 {
			r.ackID = n
		}
	}
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
// It returns 0 when the header is absent or unusable.
func retryAfter(h string, now time.Time) time.Duration { return httpsink.RetryAfter(h, now) }

// waitAck polls the ack endpoint for id until it is true, ctx is done or
// AckTimeout passes.
func (s *Sink) waitAck(ctx context.Context, id int64) error {
	deadline := time.Now().Add(s.cfg.AckTimeout)
	b := body{data: fmt.Appendf(nil, `{"acks":[%d]}`, id)}
	key := strconv.FormatInt(id, 10)
	last := "none answered"
	wait := s.cfg.AckPoll
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		r, err := s.doAuth(ctx, http.MethodPost, s.ackURL, b)
		switch {
		case err != nil:
			var se *sink.Error
			if !errors.As(err, &se) {
				return err // ctx.Err() or ErrClosed
			}
			last = se.Msg
		case r.status/100 == 2:
			p := parserPool.Get()
			v, perr := p.ParseBytes(r.body)
			done := perr == nil && v.GetBool("acks", key)
			parserPool.Put(p)
			if done {
				return nil
			}
			last = "not yet indexed"
		case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
			return s.errf(r, sink.Config, "ack poll: "+s.tokenAdvice(r))
		case r.status == http.StatusBadRequest && r.code == codeAckDisabled:
			return s.errf(r, sink.Config, "indexer acknowledgement is disabled for this token: enable it on the token, or drop --indexer-ack")
		case r.status == http.StatusBadRequest && (r.code == codeNoChannel || r.code == codeBadChannel):
			return s.errf(r, sink.Config, "ack poll: "+s.channelAdvice())
		default:
			e := s.statusError(r)
			if e.Class != sink.Retryable {
				e.Msg = "ack poll: " + e.Msg
				return e
			}
			last = e.Error()
		}
		left := time.Until(deadline)
		if left <= 0 {
			return &sink.Error{Class: sink.Retryable, Code: -1, Msg: fmt.Sprintf(
				"indexer acknowledgement of ackId %d on channel %s not confirmed within %s (last poll: %s); "+
					"behind a load balancer, ack polls need sticky sessions to the indexer that received the events",
				id, s.cfg.Channel, s.cfg.AckTimeout, last)}
		}
		t.Reset(min(wait, left))
	}
}

// Check implements sink.Sink: HEC health, then the token (an empty POST,
// which writes nothing), then, with IndexerAck, the ack endpoint. Errors
// are *sink.Error with a Msg that says what to do.
func (s *Sink) Check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	r, err := s.do(ctx, http.MethodGet, s.healthURL, body{}, "")
	if err != nil {
		var se *sink.Error
		if errors.As(err, &se) {
			se.Msg = "cannot reach HEC (check the URL, DNS, firewall and HTTPS_PROXY/NO_PROXY): " + se.Msg
		}
		return err
	}
	switch {
	case r.status == http.StatusOK:
		// Splunk answers code 17; VictoriaLogs an empty 200.
	case r.status == http.StatusServiceUnavailable:
		e := s.statusError(r)
		e.Msg = "HEC at " + s.display + " is unhealthy (busy, or its queues are full): " + e.Msg
		return e
	case r.status == http.StatusNotFound:
		return s.errf(r, sink.Config, "no HEC health endpoint beside "+s.display+": check the URL (the HEC port is often 8088) and that HEC is enabled")
	default:
		e := s.statusError(r)
		e.Msg = "health check: " + e.Msg
		return e
	}

	r, err = s.doAuth(ctx, http.MethodPost, s.eventURL, body{data: []byte{}})
	if err != nil {
		return err
	}
	switch {
	case r.status/100 == 2, r.status == http.StatusBadRequest && r.code == codeNoData:
		// 400 code 5 "No data": the token was accepted. A 200: a server
		// that does not check tokens (VictoriaLogs).
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		return s.errf(r, sink.Config, s.tokenAdvice(r))
	case r.status == http.StatusBadRequest && (r.code == codeNoChannel || r.code == codeBadChannel):
		return s.errf(r, sink.Config, s.channelAdvice())
	default:
		e := s.statusError(r)
		e.Msg = "token check: " + e.Msg
		return e
	}

	if !s.cfg.IndexerAck {
		return nil
	}
	r, err = s.doAuth(ctx, http.MethodPost, s.ackURL, body{data: []byte(`{"acks":[]}`)})
	if err != nil {
		return err
	}
	switch {
	case r.status/100 == 2:
		return nil
	case r.status == http.StatusBadRequest && r.code == codeAckDisabled:
		return s.errf(r, sink.Config, "indexer acknowledgement is disabled for this token: enable it on the token, or drop --indexer-ack")
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		return s.errf(r, sink.Config, "ack endpoint: "+s.tokenAdvice(r))
	}
	e := s.statusError(r)
	e.Msg = "ack endpoint: " + e.Msg
	return e
}
