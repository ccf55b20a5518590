package datadog

import (
	"context"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fake/ddfake"
	"github.com/auditpipe/auditpipe/internal/fakehttp"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestOnlyIntakeSuccessCounts: only Datadog's documented success answer,
// 202 with a JSON body, delivers; anything else is a retryable failure
// naming what answered, never the key.
func TestOnlyIntakeSuccessCounts(t *testing.T) {
	sinktest.OnlySuccessCounts(t, []string{apiKey, newAPIKey}, func(t *testing.T, raw *fakehttp.Raw, big bool) (int, sink.Result, error) {
		f := startFake(t, ddfake.Options{Raw: func(method, path string) *fakehttp.Raw {
			if strings.HasSuffix(path, "/api/v2/logs") {
				return raw
			}
			return nil
		}})
		s := newSink(t, Config{URL: f.URL})
		recs := records(t, 300, 200)
		if big {
			sinktest.SkipIfBuffered(t, 4_800_000)
			recs = records(t, 1000, 4500) // Datadog's request limit: 5 MB; Early needs more than the socket buffers
		}
		res, err := s.Send(context.Background(), recs)
		return len(recs), res, err
	},
		sinktest.Answer{Name: "202 with an HTML body", Raw: fakehttp.Raw{Status: 202, ContentType: "text/html", Body: "<html>queued</html>"},
			Want: []string{"not a JSON object"}},
		sinktest.Answer{Name: "202 empty", Raw: fakehttp.Raw{Status: 202}, Want: []string{"empty body"}},
		sinktest.Answer{Name: "200 with {}", Raw: fakehttp.Raw{ContentType: "application/json", Body: `{}`},
			Want: []string{"not 200"}},
		sinktest.Answer{Name: "early 202 before the body was read", Big: true,
			Raw:  fakehttp.Raw{Status: 202, Early: true, ContentType: "application/json", Body: `{}`},
			Want: []string{"before the request body was sent in full"}},
	)
}
