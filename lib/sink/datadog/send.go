package datadog

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

const (
	maxResponse = 64 << 10            // response bytes read and parsed
	maxMsg      = httpsink.MaxMessage // response text kept in an error
)

var parserPool fastjson.ParserPool

// reply is an HTTP response, read.
type reply struct {
	status     int
	header     http.Header
	body       []byte
	secrets    []string // keys sent, to scrub from messages
	refreshErr error    // a failed APIKey.Refresh after 401/403
	raw        httpsink.Reply
}

// intakeSuccess is the logs intake's success answer.
const intakeSuccess = "HTTP 202 with a JSON object, {}"

// notSuccess says why a 2xx reply to an intake request is not Datadog's
// success answer, "" if it is one.
func (r *reply) notSuccess() string {
	switch {
	case !r.raw.BodySent():
		return "early" // httpsink.Unexpected words it
	case r.status != http.StatusAccepted:
		return fmt.Sprintf("the intake answers 202, not %d", r.status)
	case len(r.body) == 0:
		return "an empty body"
	}
	p := parserPool.Get()
	defer parserPool.Put(p)
	if v, err := p.ParseBytes(r.body); err != nil || v.Type() != fastjson.TypeObject {
		return "the body is not a JSON object"
	}
	return ""
}

// Send implements sink.Sink: one intake request for the records, less
// those whose log is over MaxLogBytes (Poison, not sent).
func (s *Sink) Send(ctx context.Context, records []sink.Record) (sink.Result, error) {
	res := sink.NewResult(len(records))
	if len(records) == 0 {
		return res, nil
	}
	if s.closed.Load() {
		return res, ErrClosed
	}
	b, sent, tooLarge, err := s.encode(records, res)
	if err != nil {
		return res, fmt.Errorf("datadog: compress body: %w", err)
	}
	if tooLarge {
		return res, &sink.Error{Class: sink.TooLarge, Code: -1, Msg: fmt.Sprintf(
			"%d records are over Datadog's limits of %d logs and %d bytes per request (reached at %d logs, %d bytes); nothing sent",
			len(records), MaxLogs, MaxRequestBytes, len(sent), b.raw)}
	}
	if len(sent) == 0 {
		return res, nil
	}
	r, err := s.doAuth(ctx, http.MethodPost, s.intakeURL, b)
	if err != nil {
		return res, err
	}
	switch {
	case r.status/100 == 2:
		if why := r.notSuccess(); why != "" {
			return res, httpsink.Unexpected(&r.raw, "Datadog", intakeSuccess, why, r.secrets, "[secret]")
		}
		for _, i := range sent {
			res.Status[i] = sink.Delivered
		}
		return res, nil
	case r.status == http.StatusBadRequest:
		return res, s.errf(r, sink.BadRequest, "")
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		return res, s.errf(r, sink.Config, s.keyAdvice(r))
	case r.status == http.StatusRequestEntityTooLarge:
		return res, s.errf(r, sink.TooLarge, fmt.Sprintf("request of %d bytes (%d uncompressed) too large", len(b.data), b.raw))
	}
	return res, s.statusError(r)
}

// statusError classifies the statuses every request shares.
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
		return s.errf(r, sink.Config, fmt.Sprintf("redirected to %q: redirects are not followed (the API key would go along); set URL to the final endpoint", loc))
	case r.status == http.StatusNotFound:
		return s.errf(r, sink.Config, "no Datadog logs intake at "+s.display+": check Site or URL")
	}
	return s.errf(r, sink.Config, "")
}

func (s *Sink) keyAdvice(r *reply) string {
	msg := "the API key from " + s.cfg.APIKey.String() + " was refused: check that it is an API key (not an application key), " +
		"that it is not revoked, and that it belongs to site " + s.cfg.Site
	if s.override {
		msg = "the API key from " + s.cfg.APIKey.String() + " was refused by " + s.display + ": check that it is a valid API key for that endpoint"
	}
	msg += httpsink.RefreshNote(r.refreshErr)
	return msg
}

// errf builds a *sink.Error for r with an explanation before the
// response text.
func (s *Sink) errf(r *reply, c sink.Class, explain string) *sink.Error {
	msg := httpsink.Explain(explain, "Datadog", s.clean(r, responseText(r.body)))
	return &sink.Error{Class: c, HTTPStatus: r.status, Code: -1, Msg: msg}
}

// responseText returns the text of a Datadog answer: its "errors" (strings,
// or objects with title and detail) joined by "; ", else the body.
func responseText(body []byte) string {
	p := parserPool.Get()
	defer parserPool.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil || v.Type() != fastjson.TypeObject {
		return string(body)
	}
	errs := v.GetArray("errors")
	if len(errs) == 0 {
		return string(body)
	}
	var parts []string
	for _, e := range errs {
		if b, err := e.StringBytes(); err == nil {
			parts = append(parts, string(b))
			continue
		}
		t, d := string(e.GetStringBytes("title")), string(e.GetStringBytes("detail"))
		switch {
		case t != "" && d != "":
			parts = append(parts, t+": "+d)
		case t != "" || d != "":
			parts = append(parts, t+d)
		default:
			parts = append(parts, e.String())
		}
	}
	return strings.Join(parts, "; ")
}

// clean scrubs the keys from text, keeps it on one line and cuts it to
// maxMsg bytes. Scrubbing comes first, so a cut cannot leave part of a key
// behind.
func (s *Sink) clean(r *reply, text string) string {
	return httpsink.Clean(text, r.secrets, "[secret]")
}

// doAuth sends a request with the key and, on 401/403, re-resolves the
// key and, if it changed, sends the request once more with the new one. It
// compares the key it sent with the current one rather than trusting
// Refresh's changed, so concurrent requests that all failed with the old
// key all retry.
func (s *Sink) doAuth(ctx context.Context, method, u string, b body) (*reply, error) {
	key, err := s.key(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.do(ctx, method, u, b, key)
	if err != nil || (r.status != http.StatusUnauthorized && r.status != http.StatusForbidden) {
		return r, err
	}
	if _, err := s.cfg.APIKey.Refresh(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.refreshErr = err
		return r, nil
	}
	cur, err := s.key(ctx)
	if err != nil || cur == key {
		return r, nil
	}
	r2, err := s.do(ctx, method, u, b, cur)
	if err != nil {
		return nil, err
	}
	r2.secrets = append(r2.secrets, key)
	return r2, nil
}

// key returns the current API key, checked for use in a header.
func (s *Sink) key(ctx context.Context) (string, error) {
	k, err := s.cfg.APIKey.Get(ctx)
	if err != nil {
		return "", &sink.Error{Class: sink.Config, Code: -1, Msg: "read Datadog API key: " + err.Error()}
	}
	for _, c := range k {
		if c < 0x20 || c == 0x7f {
			return "", &sink.Error{Class: sink.Config, Code: -1, Msg: "the API key from " + s.cfg.APIKey.String() +
				" contains a control character (a line break inside the value?)"}
		}
	}
	return k, nil
}

// do sends one request and reads the reply. A transport failure comes
// back as a Retryable *sink.Error, or as ctx.Err() when ctx is done.
func (s *Sink) do(ctx context.Context, method, u string, b body, key string) (*reply, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := httpsink.NewRequest(rctx, method, u, b.data, b.gzip, "application/json")
	if err != nil {
		return nil, fmt.Errorf("datadog: build request: %w", err)
	}
	req.Header.Set("DD-API-KEY", key)
	req.Header.Set("Accept", "application/json")
	r := &reply{secrets: []string{key}}
	rep, err := httpsink.RoundTrip(s.client, req, maxResponse, s.cfg.Timeout)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &sink.Error{Class: sink.Retryable, Code: -1, Msg: s.clean(r, err.Error())}
	}
	r.status, r.header, r.body, r.raw = rep.Status, rep.Header, rep.Body, rep
	return r, nil
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
// It returns 0 when the header is absent or unusable.
func retryAfter(h string, now time.Time) time.Duration { return httpsink.RetryAfter(h, now) }

// Check implements sink.Sink: the key check (GET /api/v1/validate), with
// the fallback for an overriding URL described in the package comment.
// Errors are *sink.Error with a Msg that says what to do.
func (s *Sink) Check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	r, err := s.doAuth(ctx, http.MethodGet, s.validateURL, body{})
	if err != nil {
		var se *sink.Error
		if errors.As(err, &se) && se.HTTPStatus == 0 && se.Class == sink.Retryable {
			se.Msg = "cannot reach Datadog (check Site or URL, DNS, firewall and HTTPS_PROXY/NO_PROXY): " + se.Msg
		}
		return err
	}
	switch {
	case r.status == http.StatusOK:
		p := parserPool.Get()
		v, perr := p.ParseBytes(r.body)
		isObj := perr == nil && v.Type() == fastjson.TypeObject
		var valid *fastjson.Value
		if isObj {
			valid = v.Get("valid")
		}
		switch {
		case valid != nil && valid.Type() == fastjson.TypeTrue:
			parserPool.Put(p)
			return nil
		case valid == nil && isObj && s.override:
			// A compatible intake that checks no key (VictoriaLogs answers {}).
			parserPool.Put(p)
			return nil
		}
		parserPool.Put(p)
		if valid != nil {
			return s.errf(r, sink.Config, s.keyAdvice(r))
		}
		return s.errf(r, sink.Config, "GET "+s.validateURL+" answered 200 but not with Datadog's {\"valid\":true}: check Site or URL")
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		return s.errf(r, sink.Config, s.keyAdvice(r))
	case r.status == http.StatusNotFound && s.override:
		return s.checkIntake(ctx)
	}
	e := s.statusError(r)
	e.Msg = "key check: " + e.Msg
	return e
}

// checkIntake POSTs an empty array to the intake: for an overriding URL
// whose server has no key validation endpoint.
func (s *Sink) checkIntake(ctx context.Context) error {
	r, err := s.doAuth(ctx, http.MethodPost, s.intakeURL, body{data: []byte("[]")})
	if err != nil {
		return err
	}
	switch {
	case r.status/100 == 2:
		return nil // the intake is there; the key is not verified
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		return s.errf(r, sink.Config, s.keyAdvice(r))
	}
	e := s.statusError(r)
	e.Msg = "no key validation at " + s.validateURL + " (404), and the intake answered: " + e.Msg
	return e
}
