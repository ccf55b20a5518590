package splunk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	maxResponse = 64 << 10 // response bytes read and parsed
)

var parserPool fastjson.ParserPool

// reply is an answer from HEC, read and parsed.
type reply struct {
	*httpsink.Reply
	text    string // "text", or the raw body if it is not HEC JSON
	code    int    // "code", -1 if absent
	invalid int    // "invalid-event-number", -1 if absent
	ackID   int64  // "ackId", -1 if absent
	object  bool   // the body is a JSON object
}

// hecSuccess is HEC's success answer to an event request.
const hecSuccess = `HTTP 200 {"text":"Success","code":0}`

// notSuccess says why a 2xx reply to an event request is not HEC's
// success answer, "" if it is one.
func (r *reply) notSuccess() string {
	if why := r.NotSuccess("HEC", http.StatusOK); why != "" {
		return why
	}
	switch {
	case !r.object:
		return "the body is not a JSON object"
	case r.code < 0:
		return `no "code" in the body`
	case r.code != 0:
		return fmt.Sprintf("code %d, not 0", r.code)
	}
	return ""
}

// Send implements sink.Sink: one HEC request, less the records VictoriaLogs
// would drop (httpsink.Client.SendKeepingVictoriaLogs).
func (s *Sink) Send(ctx context.Context, records []sink.Record) (sink.Result, error) {
	probe := httpsink.Request{Method: http.MethodGet, URL: s.healthURL, NoAuth: true} // HEC health
	return s.c.SendKeepingVictoriaLogs(ctx, records, probe, s.send)
}

// send is Send for records that may all go (at least one). The raw
// endpoint takes record lines only: a batch's checkpoint lines (seal
// --emit-checkpoints) go to /event, under their own sourcetype.
func (s *Sink) send(ctx context.Context, records []sink.Record) (sink.Result, error) {
	if s.rawURL != "" && sink.HasCheckpoints(records) {
		return sink.SplitCheckpoints(ctx, records,
			func(ctx context.Context, rs []sink.Record) (sink.Result, error) { return s.sendTo(ctx, rs, true) },
			func(ctx context.Context, rs []sink.Record) (sink.Result, error) { return s.sendTo(ctx, rs, false) })
	}
	return s.sendTo(ctx, records, s.rawURL != "")
}

// sendTo sends records to the raw endpoint or as events to /event.
func (s *Sink) sendTo(ctx context.Context, records []sink.Record, raw bool) (sink.Result, error) {
	res := sink.NewResult(len(records))
	var b httpsink.Body
	var err error
	u, ctype := s.eventURL, "application/json"
	if raw {
		u, ctype = s.rawURL, "text/plain"
		b, err = encodeRaw(records, s.cfg.Gzip)
	} else {
		b, err = encodeRouted(s.meta, s.cfg.IndexFor, records, s.cfg.Gzip, !s.cfg.NoFields)
	}
	if err != nil {
		return res, fmt.Errorf("splunk: compress body: %w", err)
	}
	// The body's memory is pooled again once this request is answered
	// and net/http closed it (httpsink.Body.Release).
	defer b.Release()
	r, err := s.doType(ctx, http.MethodPost, u, b, false, ctype)
	if err != nil {
		return res, err
	}
	if r.Status/100 == 2 {
		if why := r.notSuccess(); why != "" {
			return res, s.c.Unexpected(r.Reply, "HEC", hecSuccess, why)
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
func (s *Sink) classify(r *reply, b httpsink.Body, records []sink.Record, res sink.Result) (sink.Result, error) {
	n := len(res.Status)
	switch r.Status {
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
		e := s.c.TooLarge(r.Reply, b, "request")
		e.Code = r.code
		return res, e
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

// statusError is the client's rule (httpsink.Classify) for an answer no
// HEC code settled.
func (s *Sink) statusError(r *reply) *sink.Error {
	e := s.c.Fail(r.Reply)
	e.Code = r.code
	return e
}

func (s *Sink) tokenAdvice(r *reply) string {
	msg := "the HEC token from " + s.cfg.Token.String() + " was refused: check that it exists, is enabled and allows this index"
	msg += httpsink.RefreshNote(r.RefreshErr)
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
	e := s.c.Error(r.Reply, c, explain)
	e.Code = r.code
	return e
}

func (s *Sink) clean(r *reply, text string) string { return s.c.Clean(r.Reply, text) }

// do sends one request (with the token unless noAuth) and parses HEC's answer.
func (s *Sink) do(ctx context.Context, method, u string, b httpsink.Body, noAuth bool) (*reply, error) {
	return s.doType(ctx, method, u, b, noAuth, "application/json")
}

// doType is do with the body's Content-Type.
func (s *Sink) doType(ctx context.Context, method, u string, b httpsink.Body, noAuth bool, ctype string) (*reply, error) {
	rep, err := s.c.Do(ctx, httpsink.Request{Method: method, URL: u, Body: b, ContentType: ctype,
		Limit: maxResponse, NoAuth: noAuth, Header: s.header})
	if err != nil {
		return nil, err
	}
	r := &reply{Reply: rep, code: -1, invalid: -1, ackID: -1}
	r.parse()
	return r, nil
}

// header sets the channel, when there is one.
func (s *Sink) header(h http.Header) {
	if s.cfg.Channel != "" {
		h.Set("X-Splunk-Request-Channel", s.cfg.Channel)
	}
}

// hecText is the text of a HEC answer: its "text" if it is a JSON object,
// else the body as it is (a proxy's HTML page).
func hecText(body []byte) string {
	r := reply{Reply: &httpsink.Reply{Body: body}}
	r.parse()
	return r.text
}

// parse fills text, code, invalid and ackID from the body. A body that is
// not a JSON object (a proxy's HTML page) becomes the text as it is.
func (r *reply) parse() {
	p := parserPool.Get()
	defer parserPool.Put(p)
	v, err := p.ParseBytes(r.Body)
	if err != nil || v.Type() != fastjson.TypeObject {
		r.text = string(r.Body)
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

// waitAck polls the ack endpoint for id until it is true, ctx is done or
// AckTimeout passes.
func (s *Sink) waitAck(ctx context.Context, id int64) error {
	deadline := time.Now().Add(s.cfg.AckTimeout)
	b := httpsink.Body{Data: fmt.Appendf(nil, `{"acks":[%d]}`, id)}
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
		r, err := s.do(ctx, http.MethodPost, s.ackURL, b, false)
		switch {
		case err != nil:
			var se *sink.Error
			if !errors.As(err, &se) {
				return err // ctx.Err() or ErrClosed
			}
			last = se.Msg
		case r.Status/100 == 2:
			p := parserPool.Get()
			v, perr := p.ParseBytes(r.Body)
			done := perr == nil && v.GetBool("acks", key)
			parserPool.Put(p)
			if done {
				return nil
			}
			last = "not yet indexed"
		case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
			return s.errf(r, sink.Config, "ack poll: "+s.tokenAdvice(r))
		case r.Status == http.StatusBadRequest && r.code == codeAckDisabled:
			return s.errf(r, sink.Config, "indexer acknowledgement is disabled for this token: enable it on the token, or drop --indexer-ack")
		case r.Status == http.StatusBadRequest && (r.code == codeNoChannel || r.code == codeBadChannel):
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
	if s.c.Closed() {
		return ErrClosed
	}
	r, err := s.do(ctx, http.MethodGet, s.healthURL, httpsink.Body{}, true)
	if err != nil {
		var se *sink.Error
		if errors.As(err, &se) {
			se.Msg = "cannot reach HEC (check the URL, DNS, firewall and HTTPS_PROXY/NO_PROXY): " + se.Msg
		}
		return err
	}
	switch {
	case r.Status == http.StatusOK:
		// Splunk answers code 17; VictoriaLogs an empty 200.
	case r.Status == http.StatusServiceUnavailable:
		e := s.statusError(r)
		e.Msg = "HEC at " + s.display + " is unhealthy (busy, or its queues are full): " + e.Msg
		return e
	case r.Status == http.StatusNotFound:
		return s.errf(r, sink.Config, "no HEC health endpoint beside "+s.display+": check the URL (the HEC port is often 8088) and that HEC is enabled")
	default:
		e := s.statusError(r)
		e.Msg = "health check: " + e.Msg
		return e
	}

	check := s.eventURL
	if s.rawURL != "" {
		check = s.rawURL
	}
	r, err = s.do(ctx, http.MethodPost, check, httpsink.Body{Data: []byte{}}, false)
	if err != nil {
		return err
	}
	switch {
	case r.Status/100 == 2, r.Status == http.StatusBadRequest && r.code == codeNoData:
		// 400 code 5 "No data": the token was accepted. A 200: a server
		// that does not check tokens (VictoriaLogs).
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return s.errf(r, sink.Config, s.tokenAdvice(r))
	case r.Status == http.StatusBadRequest && (r.code == codeNoChannel || r.code == codeBadChannel):
		return s.errf(r, sink.Config, s.channelAdvice())
	default:
		e := s.statusError(r)
		e.Msg = "token check: " + e.Msg
		return e
	}

	if !s.cfg.IndexerAck {
		return nil
	}
	r, err = s.do(ctx, http.MethodPost, s.ackURL, httpsink.Body{Data: []byte(`{"acks":[]}`)}, false)
	if err != nil {
		return err
	}
	switch {
	case r.Status/100 == 2:
		return nil
	case r.Status == http.StatusBadRequest && r.code == codeAckDisabled:
		return s.errf(r, sink.Config, "indexer acknowledgement is disabled for this token: enable it on the token, or drop --indexer-ack")
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return s.errf(r, sink.Config, "ack endpoint: "+s.tokenAdvice(r))
	}
	e := s.statusError(r)
	e.Msg = "ack endpoint: " + e.Msg
	return e
}
