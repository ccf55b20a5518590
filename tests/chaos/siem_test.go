package chaos

import (
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/internal/fake/ddfake"
	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
)

// httpFaults is the state of the SIEM-side faults, shared by the fake's
// hooks and the injector. A burst answers the next n intake requests
// with a status; a window applies until a deadline.
type httpFaults struct {
	mu    sync.Mutex
	st    *stats
	burst struct {
		status     int
		retryAfter string
		left       int
		name       string
	}
	tooLargeUntil time.Time // bodies over tooLargeAt bytes get 413
	tooLargeAt    int
	poisonUntil   time.Time // records with seq%poisonMod == 0 are rejected
	poisonMod     int64
	partialUntil  time.Time // elastic: some items answer 429
}

// decide returns the fault to answer an intake request with (status 0:
// none), counting it.
func (h *httpFaults) decide(bodyLen int) (status int, retryAfter string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.burst.left > 0 {
		h.burst.left--
		h.st.response(h.burst.name)
		return h.burst.status, h.burst.retryAfter
	}
	if time.Now().Before(h.tooLargeUntil) && bodyLen > h.tooLargeAt {
		h.st.response("http.413")
		return 413, ""
	}
	return 0, ""
}

func (h *httpFaults) setBurst(name string, status, n int, retryAfter string) {
	h.mu.Lock()
	h.burst.name, h.burst.status, h.burst.left, h.burst.retryAfter = name, status, n, retryAfter
	h.mu.Unlock()
}

func (h *httpFaults) poisoned(seq int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Now().Before(h.poisonUntil) && seq%h.poisonMod == 0 {
		h.st.response("http.poison")
		return true
	}
	return false
}

func (h *httpFaults) partial(pos int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Now().Before(h.partialUntil) && pos%3 == 1 {
		h.st.response("http.bulk_item_429")
		return true
	}
	return false
}

// siem is one fake SIEM and how audit-ship talks to it.
type siem interface {
	name() string
	addr() string // host:port of the fake
	shipArgs(base, secretFile string) []string
	rotate(secret string) // the SIEM accepts only this credential from now on
	// stored returns the record lines the SIEM holds (every copy it
	// stored) and how many duplicate sends it answered without storing
	// (Elasticsearch's 409s).
	stored() (lines []string, dupSends int)
	close()
}

func hostPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	return u.Host
}

// seqOf reads the seq of a record line cheaply.
func seqOf(p *fastjson.Parser, line string) int64 {
	v, err := p.Parse(line)
	if err != nil {
		return 0
	}
	return v.GetInt64("seq")
}

type splunkSIEM struct {
	srv *hecfake.Server
}

func newSplunk(h *httpFaults, secret string) *splunkSIEM {
	var seqp sync.Mutex
	var p fastjson.Parser
	s := &splunkSIEM{}
	s.srv = hecfake.New(hecfake.Options{
		Tokens: []string{secret},
		Fault: func(r *hecfake.Request) hecfake.Fault {
			if r.Path != "/services/collector/event" {
				return hecfake.Fault{}
			}
			status, ra := h.decide(len(r.Body))
			switch status {
			case 0:
				return hecfake.Fault{}
			case 503:
				return hecfake.Fault{Status: 503, Code: 9, Text: "Server is busy", RetryAfter: ra}
			case 500:
				return hecfake.Fault{Status: 500, Code: 8, Text: "Internal server error", RetryAfter: ra}
			}
			return hecfake.Fault{Status: status, RetryAfter: ra}
		},
		Poison: func(e *hecfake.Event) bool {
			seqp.Lock()
			seq := seqOf(&p, e.Event)
			seqp.Unlock()
			return h.poisoned(seq)
		},
	})
	return s
}

func (s *splunkSIEM) name() string { return "splunk" }
func (s *splunkSIEM) addr() string { return hostPort(s.srv.URL) }
func (s *splunkSIEM) shipArgs(base, secretFile string) []string {
	return []string{"--kind", "splunk", "--url", base + "/services/collector/event", "--token", "file:" + secretFile}
}
func (s *splunkSIEM) rotate(secret string) { s.srv.SetTokens(secret) }
func (s *splunkSIEM) stored() ([]string, int) {
	evs := s.srv.Events()
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Event
	}
	return out, 0
}
func (s *splunkSIEM) close() { s.srv.Close() }

type elasticSIEM struct {
	srv  *esfake.Server
	mu   sync.Mutex
	dups int
}

func newElastic(h *httpFaults, secret string) *elasticSIEM {
	s := &elasticSIEM{}
	var seqp sync.Mutex
	var p fastjson.Parser
	s.srv = esfake.New(esfake.Options{
		APIKeys: []string{secret},
		Fault: func(r *esfake.Request) esfake.Fault {
			if r.Method != "POST" {
				return esfake.Fault{}
			}
			status, ra := h.decide(len(r.Body))
			if status == 0 {
				return esfake.Fault{}
			}
			return esfake.Fault{Status: status, RetryAfter: ra}
		},
		Item: func(it *esfake.Item) esfake.ItemResult {
			seqp.Lock()
			v, err := p.ParseBytes(it.Doc)
			seq := int64(0)
			if err == nil {
				seq = v.GetInt64("seq")
			}
			seqp.Unlock()
			if h.poisoned(seq) {
				return esfake.ItemResult{Status: 400, Type: "mapper_parsing_exception", Reason: "failed to parse field [record] of type [object] (chaos)"}
			}
			if h.partial(it.Pos) {
				return esfake.ItemResult{Status: 429, Type: "es_rejected_execution_exception", Reason: "rejected execution of coordinating operation (chaos)"}
			}
			if _, ok := s.srv.Doc(it.Index, it.ID); ok && it.ID != "" {
				s.mu.Lock()
				s.dups++ // answered 409 by the normal handling
				s.mu.Unlock()
			}
			return esfake.ItemResult{}
		},
	})
	return s
}

func (s *elasticSIEM) name() string { return "elastic" }
func (s *elasticSIEM) addr() string { return hostPort(s.srv.URL) }
func (s *elasticSIEM) shipArgs(base, secretFile string) []string {
	return []string{"--kind", "elastic", "--url", base, "--api-key", "file:" + secretFile}
}
func (s *elasticSIEM) rotate(secret string) { s.srv.SetAPIKeys(secret) }
func (s *elasticSIEM) stored() ([]string, int) {
	docs := s.srv.Docs()
	out := make([]string, 0, len(docs))
	var p fastjson.Parser
	for _, d := range docs {
		v, err := p.Parse(d.Source)
		if err != nil {
			continue
		}
		out = append(out, string(v.GetStringBytes("message")))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return out, s.dups
}
func (s *elasticSIEM) close() { s.srv.Close() }

type datadogSIEM struct {
	srv *ddfake.Server
}

func newDatadog(h *httpFaults, secret string) *datadogSIEM {
	s := &datadogSIEM{}
	s.srv = ddfake.New(ddfake.Options{
		APIKeys: []string{secret},
		Fault: func(r *ddfake.Request) ddfake.Fault {
			if r.Method != "POST" {
				return ddfake.Fault{}
			}
			status, ra := h.decide(len(r.Body))
			if status == 0 {
				return ddfake.Fault{}
			}
			return ddfake.Fault{Status: status, RetryAfter: ra}
		},
		Poison: func(l *ddfake.Log) bool {
			var seq int64
			switch v := l.Attrs["seq"].(type) {
			case string:
				seq, _ = strconv.ParseInt(v, 10, 64)
			}
			return h.poisoned(seq)
		},
	})
	return s
}

func (s *datadogSIEM) name() string { return "datadog" }
func (s *datadogSIEM) addr() string { return hostPort(s.srv.URL) }
func (s *datadogSIEM) shipArgs(base, secretFile string) []string {
	return []string{"--kind", "datadog", "--url", base, "--api-key", "file:" + secretFile}
}
func (s *datadogSIEM) rotate(secret string)    { s.srv.SetAPIKeys(secret) }
func (s *datadogSIEM) stored() ([]string, int) { return s.srv.Messages(), 0 }
func (s *datadogSIEM) close()                  { s.srv.Close() }
