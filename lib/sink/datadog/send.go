package datadog

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

const (
	maxResponse = 64 << 10 // response bytes read and parsed
)

var parserPool fastjson.ParserPool

// intakeSuccess is the logs intake's success answer.
const intakeSuccess = "HTTP 202 with a JSON object, {}"

// notSuccess says why a 2xx reply to an intake request is not Datadog's
// success answer, "" if it is one.
func notSuccess(r *httpsink.Reply) string {
	if why := r.NotSuccess("the intake", http.StatusAccepted); why != "" {
		return why
	}
	p := parserPool.Get()
	defer parserPool.Put(p)
	if v, err := p.ParseBytes(r.Body); err != nil || v.Type() != fastjson.TypeObject {
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
	if s.c.Closed() {
		return res, ErrClosed
	}
	b, sent, tooLarge, err := s.encode(records, res)
	if err != nil {
		return res, fmt.Errorf("datadog: compress body: %w", err)
	}
	// The body's memory is pooled again once this request is answered
	// and net/http closed it (httpsink.Body.Release).
	defer b.Release()
	if tooLarge {
		return res, &sink.Error{Class: sink.TooLarge, Code: -1, Msg: fmt.Sprintf(
			"%d records are over Datadog's limits of %d logs and %d bytes per request (reached at %d logs, %d bytes); nothing sent",
			len(records), MaxLogs, MaxRequestBytes, len(sent), b.Raw)}
	}
	if len(sent) == 0 {
		return res, nil
	}
	r, err := s.do(ctx, http.MethodPost, s.intakeURL, b)
	if err != nil {
		return res, err
	}
	switch {
	case r.Status/100 == 2:
		if why := notSuccess(r); why != "" {
			return res, s.c.Unexpected(r, "Datadog", intakeSuccess, why)
		}
		for _, i := range sent {
			res.Status[i] = sink.Delivered
		}
		return res, nil
	case r.Status == http.StatusBadRequest:
		return res, s.c.Error(r, sink.BadRequest, "")
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return res, s.c.Error(r, sink.Config, s.keyAdvice(r))
	case r.Status == http.StatusRequestEntityTooLarge:
		return res, s.c.TooLarge(r, b, "request")
	}
	return res, s.statusError(r)
}

// statusError is the client's rule (httpsink.Classify) for an answer no
// Datadog rule settled.
func (s *Sink) statusError(r *httpsink.Reply) *sink.Error { return s.c.Fail(r) }

func (s *Sink) keyAdvice(r *httpsink.Reply) string {
	msg := "the API key from " + s.cfg.APIKey.String() + " was refused: check that it is an API key (not an application key), " +
		"that it is not revoked, and that it belongs to site " + s.cfg.Site
	if s.override {
		msg = "the API key from " + s.cfg.APIKey.String() + " was refused by " + s.display + ": check that it is a valid API key for that endpoint"
	}
	msg += httpsink.RefreshNote(r.RefreshErr)
	return msg
}

// responseText returns the text of a Datadog answer: its "errors" (strings,
// or objects with title and detail) joined by "; ", else the body.
func responseText(body []byte) string {
	return httpsink.AnswerText(body, datadogErrors)
}

// datadogErrors joins the "errors" of a Datadog answer.
func datadogErrors(v *fastjson.Value) (string, bool) {
	errs := v.GetArray("errors")
	if len(errs) == 0 {
		return "", false
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
	return strings.Join(parts, "; "), true
}

// do sends one request with the API key.
func (s *Sink) do(ctx context.Context, method, u string, b httpsink.Body) (*httpsink.Reply, error) {
	return s.c.Do(ctx, httpsink.Request{Method: method, URL: u, Body: b, ContentType: "application/json",
		Limit: maxResponse, Header: func(h http.Header) { h.Set("Accept", "application/json") }})
}

// Check implements sink.Sink: the key check (GET /api/v1/validate), with
// the fallback for an overriding URL described in docs/siems/datadog.md.
// Errors are *sink.Error with a Msg that says what to do.
func (s *Sink) Check(ctx context.Context) error {
	if s.c.Closed() {
		return ErrClosed
	}
	r, err := s.do(ctx, http.MethodGet, s.validateURL, httpsink.Body{})
	if err != nil {
		var se *sink.Error
		if errors.As(err, &se) && se.HTTPStatus == 0 && se.Class == sink.Retryable {
			se.Msg = "cannot reach Datadog (check Site or URL, DNS, firewall and HTTPS_PROXY/NO_PROXY): " + se.Msg
		}
		return err
	}
	switch {
	case r.Status == http.StatusOK:
		p := parserPool.Get()
		v, perr := p.ParseBytes(r.Body)
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
			return s.c.Error(r, sink.Config, s.keyAdvice(r))
		}
		return s.c.Error(r, sink.Config, "GET "+s.validateURL+" answered 200 but not with Datadog's {\"valid\":true}: check Site or URL")
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return s.c.Error(r, sink.Config, s.keyAdvice(r))
	case r.Status == http.StatusNotFound && s.override:
		return s.checkIntake(ctx)
	}
	e := s.statusError(r)
	e.Msg = "key check: " + e.Msg
	return e
}

// checkIntake POSTs an empty array to the intake: for an overriding URL
// whose server has no key validation endpoint.
func (s *Sink) checkIntake(ctx context.Context) error {
	r, err := s.do(ctx, http.MethodPost, s.intakeURL, httpsink.Body{Data: []byte("[]")})
	if err != nil {
		return err
	}
	switch {
	case r.Status/100 == 2:
		return nil // the intake is there; the key is not verified
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return s.c.Error(r, sink.Config, s.keyAdvice(r))
	}
	e := s.statusError(r)
	e.Msg = "no key validation at " + s.validateURL + " (404), and the intake answered: " + e.Msg
	return e
}
