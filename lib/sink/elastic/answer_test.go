package elastic

import (
	"context"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/internal/fakehttp"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestOnlyBulkSuccessCounts: a 2xx whose body is not a bulk answer (a JSON
// object with a boolean "errors" and one item per document sent) delivers
// nothing: a retryable failure naming what answered, never a secret.
func TestOnlyBulkSuccessCounts(t *testing.T) {
	const n = 300
	items := func(k int) string {
		return `{"errors":false,"items":[` + strings.TrimSuffix(strings.Repeat(`{"create":{"status":201}},`, k), ",") + `]}`
	}
	sinktest.OnlySuccessCounts(t, []string{apiKey, newAPIKey}, func(t *testing.T, raw *fakehttp.Raw, big bool) (int, sink.Result, error) {
		f := startFake(t, esfake.Options{Raw: func(method, path string) *fakehttp.Raw {
			if strings.HasSuffix(path, "/_bulk") {
				return raw
			}
			return nil
		}})
		s := newSink(t, Config{URL: f.URL, Index: "audit", Auth: apiKeyAuth(t)})
		recs := records(t, n, 200)
		if big {
			sinktest.SkipIfBuffered(t, 30_000_000)
			recs = records(t, n, 100<<10)
		}
		res, err := s.Send(context.Background(), recs)
		return len(recs), res, err
	},
		sinktest.Answer{Name: "200 with one item for 300 documents", Raw: fakehttp.Raw{ContentType: "application/json", Body: items(1)},
			Want: []string{"1 items for 300 documents sent"}},
		sinktest.Answer{Name: "200 with no errors member", Raw: fakehttp.Raw{ContentType: "application/json",
			Body: strings.Replace(items(n), `"errors":false,`, "", 1)}, Want: []string{`no boolean "errors"`}},
		sinktest.Answer{Name: "200 with an empty object", Raw: fakehttp.Raw{ContentType: "application/json", Body: `{}`},
			Want: []string{`no boolean "errors"`}},
		sinktest.Answer{Name: "202 with the items", Raw: fakehttp.Raw{Status: 202, ContentType: "application/json", Body: items(n)},
			Want: []string{"HTTP 202"}},
		sinktest.Early(items(n)),
	)
}
