package splunk

import (
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// TestConformance runs the cases every sink passes (internal/sinktest).
func TestConformance(t *testing.T) {
	sinktest.Conformance(t, sinktest.Target{
		Reach: "cannot reach HEC", Secrets: []string{token, newToken}, Closed: ErrClosed,
		Start: func(t *testing.T, o sinktest.FakeOptions) sinktest.Fake {
			opts := hecfake.Options{Tokens: []string{token}}
			if o.Slow {
				opts.Fault = func(*hecfake.Request) hecfake.Fault { return hecfake.Fault{Delay: 5 * time.Second} }
			}
			f := hecfake.New
			if o.TLS {
				f = hecfake.NewTLS
			}
			s := f(opts)
			t.Cleanup(s.Close)
			fake := sinktest.Fake{URL: s.URL, Stored: func() int { return len(s.Events()) }, Close: s.Close, Reset: s.Reset}
			if o.TLS {
				fake.Cert = s.Certificate()
			}
			return fake
		},
		New: func(t *testing.T, url string, tls httpsink.TLS) sink.Sink {
			return newSink(t, Config{URL: url, Gzip: true, Conn: sink.Conn{CAFile: tls.CAFile, InsecureSkipVerify: tls.InsecureSkipVerify}})
		},
	})
}

// TestPoisonedReleases runs the package's other tests again with released
// request bodies overwritten before their memory is reused
// (sinktest.RerunPoisoned).
func TestPoisonedReleases(t *testing.T) { sinktest.RerunPoisoned(t) }
