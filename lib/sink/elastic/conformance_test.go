package elastic

import (
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// TestConformance runs the cases every sink passes (internal/sinktest).
func TestConformance(t *testing.T) {
	sinktest.Conformance(t, sinktest.Target{
		Reach: "cannot reach Elasticsearch", Secrets: []string{apiKey, newAPIKey}, Closed: ErrClosed,
		Start: func(t *testing.T, o sinktest.FakeOptions) sinktest.Fake {
			opts := esfake.Options{APIKeys: []string{apiKey}}
			if o.Slow {
				opts.Fault = func(*esfake.Request) esfake.Fault { return esfake.Fault{Delay: 5 * time.Second} }
			}
			f := esfake.New
			if o.TLS {
				f = esfake.NewTLS
			}
			s := f(opts)
			t.Cleanup(s.Close)
			fake := sinktest.Fake{URL: s.URL, Stored: func() int { return len(s.Docs()) }, Close: s.Close, Reset: s.Reset}
			if o.TLS {
				fake.Cert = s.Certificate()
			}
			return fake
		},
		New: func(t *testing.T, url string, tls httpsink.TLS) sink.Sink {
			return newSink(t, Config{URL: url, Gzip: true, Auth: apiKeyAuth(t), Conn: sink.Conn{CAFile: tls.CAFile, InsecureSkipVerify: tls.InsecureSkipVerify}})
		},
	})
}

// TestPoisonedReleases runs the package's other tests again with released
// request bodies overwritten before their memory is reused
// (sinktest.RerunPoisoned).
func TestPoisonedReleases(t *testing.T) { sinktest.RerunPoisoned(t) }
