package splunk

import (
	"context"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
	"github.com/auditpipe/auditpipe/internal/fakehttp"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestOnlyHECSuccessCounts: a 2xx whose body is not HEC's {"code":0,...}
// (a proxy's page, an empty body, truncated JSON, a reply sent before the
// request body was read) delivers nothing: a retryable failure naming the
// status, the content type and the first bytes of the body, never the
// token.
func TestOnlyHECSuccessCounts(t *testing.T) {
	sinktest.OnlySuccessCounts(t, []string{token, newToken}, func(t *testing.T, raw *fakehttp.Raw, big bool) (int, sink.Result, error) {
		f := startFake(t, hecfake.Options{Raw: func(method, path string) *fakehttp.Raw {
			if strings.HasPrefix(path, "/services/collector/event") {
				return raw
			}
			return nil
		}})
		s := newSink(t, Config{URL: f.URL})
		recs := records(300, 200)
		if big {
			sinktest.SkipIfBuffered(t, 30_000_000)
			recs = records(300, 100<<10) // 30 MB: more than any socket buffer holds
		}
		res, err := s.Send(context.Background(), recs)
		if len(f.Events()) != 0 {
			t.Errorf("fake stored events")
		}
		return len(recs), res, err
	},
		sinktest.Answer{Name: "200 without code", Raw: fakehttp.Raw{ContentType: "application/json", Body: `{"text":"Success"}`},
			Want: []string{`no "code"`}},
		sinktest.Answer{Name: "200 with an error code", Raw: fakehttp.Raw{ContentType: "application/json", Body: `{"text":"Invalid data format","code":6}`},
			Want: []string{"code 6"}},
		sinktest.Answer{Name: "204 no content", Raw: fakehttp.Raw{Status: 204}, Want: []string{"HTTP 204"}},
		sinktest.Early(`{"text":"Success","code":0}`),
	)
}
