package ship

import (
	"sync"
	"sync/atomic"
	"time"
)

// Metrics are the shipper's counters. They are plain atomics so the engine
// does not depend on an exposition library; the stage maps them onto the
// Prometheus names of docs/contract.md section 4.
type Metrics struct {
	Requests         atomic.Int64 // requests sent, including retries
	Retries          atomic.Int64
	DeliveredRecords atomic.Int64
	Duplicates       atomic.Int64 // records the SIEM already had
	Quarantined      atomic.Int64
	Splits           atomic.Int64 // 413: batch halved
	Bisects          atomic.Int64 // 400 without position: batch halved to find the poison record
	AckedRecords     atomic.Int64 // records whose ack was handed to audit-ack (written to the FIFO or stdout)
	LastAckedSeq     atomic.Int64 // lastSeq of the last ack handed over
	AcksHeld         atomic.Int64 // records delivered whose ack the FIFO sink holds (no reader, or the FIFO is full)
	AcksDropped      atomic.Int64 // records delivered whose ack was not handed over and never will be by this run (the write failed, or an earlier batch failed)
	// FailingSince is the UnixNano of the first failed request after the
	// last delivery, 0 while deliveries succeed.
	FailingSince   atomic.Int64
	FailedRequests atomic.Int64 // failed requests since FailingSince
	MarksDropped   atomic.Int64 // mark lines in the input, dropped (never shipped)
	Inflight       atomic.Int64
	Paused         atomic.Int64 // 1 once self-paused

	// RequestDone, if set, is called with the duration of every request
	// (each attempt, retries included), from the goroutine that sent it.
	// Set it before Run; it must be safe for concurrent use.
	RequestDone func(time.Duration)

	mu       sync.Mutex
	failures map[failureKey]int64
	batches  int64
	busy     time.Duration
}

type failureKey struct {
	retryable bool
	reason    string
}

func (m *Metrics) failure(retryable bool, reason string) {
	m.mu.Lock()
	if m.failures == nil {
		m.failures = make(map[failureKey]int64)
	}
	m.failures[failureKey{retryable, reason}]++
	m.mu.Unlock()
}

func (m *Metrics) observeBatch(d time.Duration) {
	m.mu.Lock()
	m.batches++
	m.busy += d
	m.mu.Unlock()
}

// Failures returns the failure counts by retryability and reason.
func (m *Metrics) Failures() map[bool]map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[bool]map[string]int64{true: {}, false: {}}
	for k, n := range m.failures {
		out[k.retryable][k.reason] += n
	}
	return out
}

// Batches returns the number of batches completed or abandoned and the
// total time spent delivering them.
func (m *Metrics) Batches() (int64, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.batches, m.busy
}
