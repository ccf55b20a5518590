package file

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/auditpipe/auditpipe/internal/sinktest"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// TestConformance runs the cases every sink passes (internal/sinktest);
// the network ones do not apply to a file.
func TestConformance(t *testing.T) {
	sinktest.Conformance(t, sinktest.Target{
		Start: func(t *testing.T, _ sinktest.FakeOptions) sinktest.Fake {
			path := filepath.Join(t.TempDir(), "audit.ndjson")
			return sinktest.Fake{URL: path, Stored: func() int {
				b, _ := os.ReadFile(path)
				return bytes.Count(b, []byte("\n"))
			}}
		},
		New: func(t *testing.T, path string, _ httpsink.TLS) sink.Sink { return newSink(t, Config{Path: path}) },
	})
}
