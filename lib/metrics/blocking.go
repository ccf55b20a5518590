package metrics

import (
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultBlockThreshold is how long a write must block to count as a
// back-pressure pause when NewBlockingWriter is given no threshold.
const DefaultBlockThreshold = 100 * time.Millisecond

// A BlockingWriter is put around a stage's stdout to count back-pressure.
// A write into a pipe blocks only when the pipe is full, that is when the
// next stage (ultimately the SIEM) is slower than this one. Each Write that
// takes longer than the threshold counts one pause and adds its duration
// to the seconds counter. The cost is two time.Now calls per Write, and the
// ndjson writer calls Write once per buffer flush (256 KiB), not per line.
type BlockingWriter struct {
	w         io.Writer
	threshold time.Duration
	paused    prometheus.Counter
	seconds   prometheus.Counter
}

// NewBlockingWriter returns a BlockingWriter writing to w. A threshold of 0
// or less means DefaultBlockThreshold. Either counter may be nil; usually
// they are a Set's BackpressurePaused and BackpressureSeconds.
func NewBlockingWriter(w io.Writer, threshold time.Duration, paused, seconds prometheus.Counter) *BlockingWriter {
	if threshold <= 0 {
		threshold = DefaultBlockThreshold
	}
	return &BlockingWriter{w: w, threshold: threshold, paused: paused, seconds: seconds}
}

// Write writes p to the underlying writer and returns its result unchanged.
func (b *BlockingWriter) Write(p []byte) (int, error) {
	start := time.Now()
	n, err := b.w.Write(p)
	if d := time.Since(start); d > b.threshold {
		if b.paused != nil {
			b.paused.Inc()
		}
		if b.seconds != nil {
			b.seconds.Add(d.Seconds())
		}
	}
	return n, err
}
