package elastic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

const (
	maxResponse     = 64 << 10 // response bytes read for anything but a bulk answer
	maxBulkResponse = 1 << 20  // bulk answer bytes read, plus perItemResponse per item
	perItemResponse = 16 << 10
)

const versionConflict = "version_conflict_engine_exception"

var parserPool fastjson.ParserPool

// bulkSuccess is the bulk API's success answer.
const bulkSuccess = `HTTP 200 {"errors":false|true,"items":[one per document sent]}`

// Send implements sink.Sink: one bulk request (see send), less the records
// VictoriaLogs would drop (httpsink.Client.SendKeepingVictoriaLogs).
func (s *Sink) Send(ctx context.Context, records []sink.Record) (sink.Result, error) {
	probe := httpsink.Request{Method: http.MethodGet, URL: s.rootURL}
	return s.c.SendKeepingVictoriaLogs(ctx, records, probe, s.send)
}

// send is Send for records that may all go (at least one).
func (s *Sink) send(ctx context.Context, records []sink.Record) (sink.Result, error) {
	res := sink.NewResult(len(records))
	sent := make([]int, 0, len(records))
	for i := range records {
		r := &records[i]
		var badIndex error
		if s.cfg.IndexFor != nil {
			badIndex = ValidIndex(s.cfg.IndexFor(r))
		}
		switch {
		case badIndex != nil:
			res.Status[i], res.Reason[i] = sink.Poison, "routed to an invalid index: "+badIndex.Error()
		case s.cfg.IDField == IDRecordHash && r.Hash == "" && r.Checkpoint == nil: // a checkpoint's _id is its note's hash
			res.Status[i], res.Reason[i] = sink.Poison, "record has no recordHash to use as the document _id"
		case s.cfg.DocShape == ShapeLine && bytes.IndexByte(r.Line, '\n') >= 0:
			res.Status[i], res.Reason[i] = sink.Poison, "record line contains a newline, which would break the bulk body"
		default:
			sent = append(sent, i)
		}
	}
	if len(sent) == 0 {
		return res, nil
	}
	b, err := s.encode(records, sent)
	if err != nil {
		return res, fmt.Errorf("elastic: compress body: %w", err)
	}
	// The body's memory is pooled again once this request is answered
	// and net/http closed it (httpsink.Body.Release).
	defer b.Release()
	limit := maxBulkResponse + perItemResponse*len(sent)
	r, err := s.do(ctx, http.MethodPost, s.bulkURL, b, limit)
	if err != nil {
		return res, err
	}
	switch {
	case r.Status/100 == 2:
		res, err := s.items(r, records, sent, res)
		if s.cfg.IDField == IDSeq {
			return s.checkSeqDuplicates(ctx, records, res, err)
		}
		return res, err
	case r.Status == http.StatusRequestEntityTooLarge:
		return res, s.c.TooLarge(r, b, "bulk request")
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return res, s.c.Error(r, sink.Config, s.authAdvice(r, "may not write here: check the role's privileges "+
			"(create_doc, create or write on index "+s.indexNote(records, sent)+")"))
	}
	return res, s.statusError(r)
}

// indexNote names the index of a request for a message: the one index, or
// with routing the first record's and how many others the request held.
func (s *Sink) indexNote(records []sink.Record, sent []int) string {
	if s.cfg.IndexFor == nil || len(sent) == 0 {
		return strconv.Quote(s.cfg.Index)
	}
	first := s.indexOf(&records[sent[0]])
	others := map[string]bool{}
	for _, i := range sent[1:] {
		if ix := s.indexOf(&records[i]); ix != first {
			others[ix] = true
		}
	}
	if len(others) == 0 {
		return strconv.Quote(first)
	}
	return fmt.Sprintf("%q and %d other routed index(es) of this request", first, len(others))
}

// bulkItem is one item of a bulk answer.
type bulkItem struct {
	status    int
	id        string
	hasID     bool
	errType   string
	errReason string
	causeType string
	cause     string
}

// parseBulk parses a bulk answer that must hold exactly n items.
func parseBulk(p *fastjson.Parser, data []byte, n int) ([]bulkItem, error) {
	v, err := p.ParseBytes(data)
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if v.Type() != fastjson.TypeObject {
		return nil, fmt.Errorf("a JSON %s, not an object", v.Type())
	}
	if ev := v.Get("errors"); ev == nil || ev.Type() != fastjson.TypeTrue && ev.Type() != fastjson.TypeFalse {
		return nil, errors.New(`no boolean "errors"`)
	}
	iv := v.Get("items")
	if iv == nil {
		return nil, errors.New("no items")
	}
	arr, err := iv.Array()
	if err != nil {
		return nil, errors.New("items is not an array")
	}
	if len(arr) != n {
		return nil, fmt.Errorf("%d items for %d documents sent", len(arr), n)
	}
	items := make([]bulkItem, n)
	for k, a := range arr {
		o, err := a.Object()
		if err != nil || o.Len() != 1 {
			return nil, fmt.Errorf("item %d is not an object with one action", k)
		}
		var res *fastjson.Value
		o.Visit(func(_ []byte, v *fastjson.Value) { res = v })
		if res.Type() != fastjson.TypeObject {
			return nil, fmt.Errorf("item %d is not an object", k)
		}
		it := &items[k]
		if sv := res.Get("status"); sv != nil {
			if st, err := sv.Int(); err == nil {
				it.status = st
			}
		}
		if idv := res.Get("_id"); idv != nil {
			id, err := idv.StringBytes()
			if err != nil {
				return nil, fmt.Errorf("item %d: _id is not a string", k)
			}
			it.id, it.hasID = string(id), true
		}
		if ev := res.Get("error"); ev != nil {
			it.errType, it.errReason = errorText(ev)
			if cv := ev.Get("caused_by"); cv != nil {
				it.causeType, it.cause = errorText(cv)
			}
		}
	}
	return items, nil
}

// errorText returns the type and reason of an Elasticsearch error object
// (or the string itself, as very old versions answered).
func errorText(v *fastjson.Value) (typ, reason string) {
	if b, err := v.StringBytes(); err == nil {
		return "", string(b)
	}
	return string(v.GetStringBytes("type")), string(v.GetStringBytes("reason"))
}

// reason formats an item's error as "<status> <type>: <reason>".
func (it *bulkItem) reason() string {
	s := strconv.Itoa(it.status)
	if it.errType != "" {
		s += " " + it.errType
	}
	if it.errReason != "" {
		s += ": " + it.errReason
	}
	if it.causeType != "" || it.cause != "" {
		s += " (caused by " + it.causeType
		if it.cause != "" {
			s += ": " + it.cause
		}
		s += ")"
	}
	return s
}

// items classifies the items of a 2xx bulk answer.
func (s *Sink) items(r *httpsink.Reply, records []sink.Record, sent []int, res sink.Result) (sink.Result, error) {
	unusable := func(why string) (sink.Result, error) {
		for _, i := range sent {
			res.Status[i], res.Reason[i] = sink.Pending, ""
		}
		return res, s.c.Unexpected(r, "the bulk API", bulkSuccess, "bulk answer unusable: "+s.clean(r, why))
	}
	if why := r.NotSuccess("the bulk API", http.StatusOK); why != "" {
		return unusable(why)
	}
	if r.Truncated {
		return unusable(fmt.Sprintf("longer than the %d bytes read", len(r.Body)))
	}
	p := parserPool.Get()
	defer parserPool.Put(p)
	items, err := parseBulk(p, r.Body, len(sent))
	if err != nil {
		return unusable(err.Error())
	}
	var (
		idBuf           [64]byte
		retry, forbid   []int // positions in items
		odd             []int
		retryStatus     int
		forbidFirstText string
	)
	for k, it := range items {
		i := sent[k]
		if it.hasID {
			if want := docID(s.cfg.IDField, &records[i], idBuf[:0]); it.id != string(want) {
				return unusable(fmt.Sprintf("item %d has _id %q, but %q was sent there", k, it.id, want))
			}
		}
		switch st := it.status; {
		case st == http.StatusOK || st == http.StatusCreated:
			res.Status[i] = sink.Delivered
		case st == http.StatusConflict && (it.errType == "" || it.errType == versionConflict):
			res.Status[i] = sink.Duplicate
		case st == http.StatusRequestTimeout || st == http.StatusTooManyRequests || st >= 500 && st < 600:
			if retry == nil || st == http.StatusTooManyRequests && retryStatus != http.StatusTooManyRequests {
				retryStatus = st
			}
			retry = append(retry, k)
		case st == http.StatusUnauthorized || st == http.StatusForbidden:
			if forbid == nil {
				forbidFirstText = it.reason()
			}
			forbid = append(forbid, k)
		case st >= 400 && st < 500:
			res.Status[i], res.Reason[i] = sink.Poison, s.clean(r, it.reason())
		default:
			odd = append(odd, k)
		}
	}
	switch {
	case len(forbid) > 0:
		return res, &sink.Error{Class: sink.Config, HTTPStatus: items[forbid[0]].status, Code: -1, Msg: fmt.Sprintf(
			"%d of %d documents refused: %s: the %s credentials may not create documents in index %q "+
				"(they need the create_doc, create or write privilege on it): fix the role, not the records",
			len(forbid), len(items), s.clean(r, forbidFirstText), s.kind, s.indexOf(&records[sent[forbid[0]]]))}
	case len(retry) > 0:
		first := items[retry[0]]
		return res, &sink.Error{Class: sink.Retryable, HTTPStatus: retryStatus, Code: -1,
			RetryAfter: httpsink.RetryAfter(r.Header.Get("Retry-After"), time.Now()),
			Msg: fmt.Sprintf("%d of %d documents refused for now (the first: %s); only those are resent",
				len(retry), len(items), s.clean(r, first.reason()))}
	case len(odd) > 0:
		return res, &sink.Error{Class: sink.Retryable, HTTPStatus: r.Status, Code: -1, Msg: fmt.Sprintf(
			"%d of %d bulk items have no usable status (the first: %d), so they are resent", len(odd), len(items), items[odd[0]].status)}
	}
	return res, nil
}

// statusError is the client's rule (httpsink.Classify) for an answer no
// bulk item settled.
func (s *Sink) statusError(r *httpsink.Reply) *sink.Error { return s.c.Fail(r) }

// authAdvice explains a 401 or 403; forbidden is what a 403 means here.
func (s *Sink) authAdvice(r *httpsink.Reply, forbidden string) string {
	var msg string
	switch s.kind {
	case AuthNone:
		if r.Status == http.StatusUnauthorized {
			msg = "the cluster wants credentials and none are configured: set Auth"
		} else {
			msg = "anonymous access " + forbidden + "; set Auth to credentials that may"
		}
	default:
		what := map[string]string{AuthAPIKey: "API key", AuthBasic: "password of user " + strconv.Quote(s.cfg.Auth.Username), AuthBearer: "bearer token"}[s.kind]
		if r.Status == http.StatusUnauthorized {
			msg = "the " + what + " from " + s.source().String() + " was not accepted: check that it is correct, not expired or invalidated"
		} else {
			msg = "the " + what + " from " + s.source().String() + " was accepted but " + forbidden
		}
		msg += httpsink.RefreshNote(r.RefreshErr)
	}
	return msg
}

// responseText returns the useful text of an error answer: "type: reason"
// of an Elasticsearch error object, else the body as it is.
func responseText(body []byte) string {
	return httpsink.AnswerText(body, func(v *fastjson.Value) (string, bool) {
		ev := v.Get("error")
		if ev == nil {
			return "", false
		}
		typ, reason := errorText(ev)
		if typ == "" {
			return reason, true
		}
		return typ + ": " + reason, true
	})
}

func (s *Sink) clean(r *httpsink.Reply, text string) string { return s.c.Clean(r, text) }

// do sends one request with the credentials, reading at most limit bytes
// of the answer.
func (s *Sink) do(ctx context.Context, method, u string, b httpsink.Body, limit int) (*httpsink.Reply, error) {
	return s.c.Do(ctx, httpsink.Request{Method: method, URL: u, Body: b, ContentType: "application/x-ndjson",
		Limit: limit, Header: func(h http.Header) {
			if b.Data != nil && s.cfg.DocShape == ShapeMessage {
				// VictoriaLogs: message is _msg, @timestamp is _time.
				// Elasticsearch ignores headers it does not know.
				h.Set("VL-Msg-Field", "message")
				h.Set("VL-Time-Field", "@timestamp")
			}
			h.Set("Accept", "application/json")
		}})
}

// Check implements sink.Sink: GET <URL>/ with the credentials. Errors are
// *sink.Error with a Msg that says what to do.
func (s *Sink) Check(ctx context.Context) error {
	if s.c.Closed() {
		return ErrClosed
	}
	r, err := s.do(ctx, http.MethodGet, s.rootURL, httpsink.Body{}, maxResponse)
	if err != nil {
		var se *sink.Error
		if errors.As(err, &se) && se.HTTPStatus == 0 && se.Class == sink.Retryable {
			se.Msg = "cannot reach Elasticsearch (check the URL, DNS, firewall, TLS settings and HTTPS_PROXY/NO_PROXY): " + se.Msg
		}
		return err
	}
	switch {
	case r.Status == http.StatusOK:
		p := parserPool.Get()
		v, perr := p.ParseBytes(r.Body)
		ok := perr == nil && v.Type() == fastjson.TypeObject
		parserPool.Put(p)
		if !ok {
			return s.c.Error(r, sink.Config, "GET "+s.rootURL+" answered 200 but not with Elasticsearch's JSON: "+
				"check that URL is the cluster's base URL (not a proxy's or a login page)")
		}
		return nil
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return s.c.Error(r, sink.Config, s.authAdvice(r, "may not call GET / (the role needs no more than to authenticate for it: is the key restricted, or a proxy in the way?)"))
	case r.Status == http.StatusNotFound:
		return s.c.Error(r, sink.Config, "no Elasticsearch at "+s.display+": check the URL (the cluster's base URL, e.g. https://es.example.com:9200)")
	}
	e := s.statusError(r)
	e.Msg = "GET " + s.rootURL + ": " + e.Msg
	return e
}

// mgetBatch bounds the ids of one _mget request.
const mgetBatch = 500

// checkSeqDuplicates confirms the 409s of a bulk answer under IDField seq.
// A 409 there says only that the index holds a document with that seq as
// its _id: after a database reset, or with a second host shipping to the
// same index, it is another chain's record, and counting it as delivered
// would ack a record never stored. So every Duplicate is checked against
// the stored document's recordHash (_mget, batched): the same hash
// confirms it; a document no longer found leaves it Pending (Retryable);
// another hash is a Conflict naming seq, _id, index and both hashes. The
// default IDField recordHash needs no check: a 409 there means a document
// whose _id is this record's recordHash exists, and only this record has
// that hash (it is the SHA-256 of the chain up to it).
func (s *Sink) checkSeqDuplicates(ctx context.Context, records []sink.Record, res sink.Result, err error) (sink.Result, error) {
	var dup []int
	for i, st := range res.Status {
		if st == sink.Duplicate && records[i].Checkpoint == nil { // a checkpoint's _id is its note's hash: a 409 is that note
			dup = append(dup, i)
		}
	}
	if len(dup) == 0 {
		return res, err
	}
	var cerr *sink.Error
	for len(dup) > 0 {
		n := min(len(dup), mgetBatch)
		if e := s.confirm(ctx, records, dup[:n], res); e != nil {
			var se *sink.Error
			if !errors.As(e, &se) {
				return unconfirmed(res), e // ctx.Err() or ErrClosed
			}
			if cerr == nil || se.Class == sink.Conflict && cerr.Class != sink.Conflict {
				cerr = se
			}
			if se.Class != sink.Conflict {
				for _, i := range dup {
					if res.Status[i] == sink.Duplicate && res.Reason[i] == unchecked {
						res.Status[i], res.Reason[i] = sink.Pending, ""
					}
				}
				break
			}
		}
		dup = dup[n:]
	}
	for i := range res.Reason {
		if res.Reason[i] == unchecked {
			res.Reason[i] = ""
		}
	}
	if cerr != nil && (err == nil || cerr.Class == sink.Conflict) {
		return res, cerr
	}
	return res, err
}

// unchecked marks (in Result.Reason) a Duplicate not yet confirmed.
const unchecked = "\x00unchecked"

// unconfirmed turns every Duplicate of res back to Pending.
func unconfirmed(res sink.Result) sink.Result {
	for i, st := range res.Status {
		if st == sink.Duplicate {
			res.Status[i], res.Reason[i] = sink.Pending, ""
		}
	}
	return res
}

// confirm checks the Duplicates of res at idx with one _mget. Confirmed
// ones stay Duplicate; others become Pending. It returns a Conflict for
// another chain's document, or the failure of the _mget itself (the
// Duplicates of idx not confirmed are then left marked unchecked, for the
// caller to turn Pending).
func (s *Sink) confirm(ctx context.Context, records []sink.Record, idx []int, res sink.Result) error {
	for _, i := range idx {
		res.Reason[i] = unchecked
	}
	q := []byte(`{"docs":[`)
	var idBuf [32]byte
	for k, i := range idx {
		if k > 0 {
			q = append(q, ',')
		}
		q = append(q, `{"_index":`...)
		q = httpsink.AppendJSONString(q, s.indexOf(&records[i]))
		q = append(q, `,"_id":"`...)
		q = append(q, docID(IDSeq, &records[i], idBuf[:0])...)
		q = append(q, `"}`...)
	}
	q = append(q, "]}"...)
	r, err := s.do(ctx, http.MethodPost, s.mgetURL, httpsink.Body{Data: q}, maxResponse+256*len(idx))
	if err != nil {
		return err
	}
	const why = "checking the 409s of --id-field seq (is the stored document this record?)"
	switch {
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return s.c.Error(r, sink.Config, why+": "+s.authAdvice(r, "may not read index "+s.indexNote(records, idx)+
			": --id-field seq needs the read privilege to tell a replay from another chain's document "+
			"(or use the default --id-field recordHash, which needs no check)"))
	case r.Status/100 != 2:
		e := s.statusError(r)
		e.Msg = "_mget, " + why + ": " + e.Msg
		if e.Class == sink.Config && r.Status != http.StatusNotFound {
			e.Class = sink.Retryable
		}
		return e
	case !r.BodySent() || r.Status != http.StatusOK || r.Truncated:
		return s.c.Unexpected(r, "the _mget API", `HTTP 200 {"docs":[...]}`, "not its answer")
	}
	p := parserPool.Get()
	defer parserPool.Put(p)
	v, perr := p.ParseBytes(r.Body)
	var docs []*fastjson.Value
	if perr == nil {
		docs = v.GetArray("docs")
	}
	if perr != nil || len(docs) != len(idx) {
		return httpsink.Unexpected(r, "the _mget API", `HTTP 200 {"docs":[...]}`,
			fmt.Sprintf("not JSON with one doc per id asked (%d asked)", len(idx)), r.Secrets, "[secret]")
	}
	var (
		conflicts []string
		gone      []int64
	)
	for k, i := range idx {
		rec := &records[i]
		d := docs[k]
		id := string(docID(IDSeq, rec, idBuf[:0]))
		if got := string(d.GetStringBytes("_id")); got != id {
			return httpsink.Unexpected(r, "the _mget API", `HTTP 200 {"docs":[...]}`,
				fmt.Sprintf("doc %d has _id %q where %q was asked", k, got, id), r.Secrets, "[secret]")
		}
		if ev := d.Get("error"); ev != nil {
			typ, reason := errorText(ev)
			return &sink.Error{Class: sink.Config, HTTPStatus: r.Status, Code: -1, Msg: fmt.Sprintf(
				"_mget, %s: seq %d (_id %q in index %q) could not be fetched: %s: %s: the 409 cannot be checked on this target "+
					"(a data stream, an alias?): use the default --id-field recordHash, which needs no check",
				why, rec.Seq, id, s.indexOf(rec), typ, s.clean(r, reason))}
		}
		if !d.GetBool("found") {
			res.Status[i], res.Reason[i] = sink.Pending, ""
			gone = append(gone, rec.Seq)
			continue
		}
		stored := string(d.GetStringBytes("_source", "recordHash"))
		if stored == rec.Hash {
			res.Reason[i] = ""
			continue
		}
		res.Status[i], res.Reason[i] = sink.Pending, ""
		shown := strconv.Quote(stored)
		if stored == "" {
			shown = "none (the stored document has no recordHash)"
		}
		conflicts = append(conflicts, fmt.Sprintf("seq %d (_id %q in index %q): stored recordHash %s, this record's %s",
			rec.Seq, id, s.indexOf(rec), shown, rec.Hash))
	}
	if len(conflicts) > 0 {
		more := ""
		if len(conflicts) > 1 {
			more = fmt.Sprintf(" (and %d more conflicting documents in this request)", len(conflicts)-1)
		}
		return &sink.Error{Class: sink.Conflict, HTTPStatus: http.StatusConflict, Code: -1, Msg: fmt.Sprintf(
			"409 on a document of another chain: %s%s. The index already holds a different record under this seq "+
				"(a reset database, or a second host shipping to the same index with --id-field seq): "+
				"this record was not stored and is not acked. Ship to another index, or use the default --id-field recordHash",
			conflicts[0], more)}
	}
	if len(gone) > 0 {
		return &sink.Error{Class: sink.Retryable, HTTPStatus: http.StatusConflict, Code: -1, Msg: fmt.Sprintf(
			"%d documents answered 409 but were not found when checked (the first: seq %d): resending them", len(gone), gone[0])}
	}
	return nil
}
