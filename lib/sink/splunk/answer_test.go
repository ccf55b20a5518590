package splunk

import (
	"context"
	"errors"
	"slices"
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
	cases := append(sinktest.WrongAnswers(token),
		sinktest.Answer{Name: "200 without code", Raw: fakehttp.Raw{ContentType: "application/json", Body: `{"text":"Success"}`},
			Want: []string{`no "code"`}},
		sinktest.Answer{Name: "200 with an error code", Raw: fakehttp.Raw{ContentType: "application/json", Body: `{"text":"Invalid data format","code":6}`},
			Want: []string{"code 6"}},
		sinktest.Answer{Name: "204 no content", Raw: fakehttp.Raw{Status: 204}, Want: []string{"HTTP 204"}},
		sinktest.Early(`{"text":"Success","code":0}`),
	)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			raw := c.Raw
			f := startFake(t, hecfake.Options{Raw: func(method, path string) *fakehttp.Raw {
				if strings.HasPrefix(path, "/services/collector/event") {
					return &raw
				}
				return nil
			}})
			s := newSink(t, Config{URL: f.URL})
			recs := records(300, 200)
			if c.Big {
				sinktest.SkipIfBuffered(t, 30_000_000)
				recs = records(300, 100<<10) // 30 MB: more than any socket buffer holds
			}
			res, err := s.Send(context.Background(), recs)
			noSecret(t, err)
			var se *sink.Error
			if !errors.As(err, &se) || se.Class != sink.Retryable {
				t.Fatalf("want a retryable *sink.Error, got %v (statuses %v)", err, res.Status[:3])
			}
			if !slices.Equal(res.Status, repeat(sink.Pending, len(recs))) {
				t.Fatalf("records counted as delivered on %s: %v", c.Name, res.Status[:3])
			}
			st := raw.Status
			if st == 0 {
				st = 200
			}
			msg := err.Error()
			t.Log(msg)
			if miss := sinktest.Has(msg, append(c.Want, "HTTP "+itoa(int64(st)))...); miss != "" {
				t.Fatalf("error lacks %q:\n%s", miss, msg)
			}
			if len(f.Events()) != 0 {
				t.Fatalf("fake stored events")
			}
		})
	}
}
