// Package sink defines what a SIEM intake looks like to audit-ship. One
// subpackage per external system (splunk, elastic, datadog, file)
// implements Sink, the HTTP ones on lib/sink/httpsink's client; the shipper
// around it owns batching, retries with backoff, splitting, quarantine,
// self-pause and acks, so every sink gets them alike.
package sink

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Record is one record line as audit-ship received it. Line and Raw alias the
// caller's memory and stay valid until Send returns; so do the strings
// (TenantID, Kind, Hash, PrevHash): audit-ship reuses a batch's memory once
// its ack is settled, so a sink copies whatever it keeps past Send
// (strings.Clone; docs/design.md, "Batch memory is reused").
type Record struct {
	Seq      int64
	TS       int64 // milliseconds since the epoch
	TenantID string
	Kind     string
	Hash     string // recordHash, 64 lowercase hex
	PrevHash string
	Line     []byte // the whole record line, exact bytes, no trailing newline
	Raw      []byte // the exact bytes of the "record" value inside Line
	Chain    string // the chain id (docs/contract.md section 5), "" until batches carry it (the Kafka sink then takes --chain-id or the marks')
	// Checkpoint is set when this line is not a record but a checkpoint
	// line (framing.IsCheckpoint, from audit-checkpoint seal
	// --emit-checkpoints): the signed note, cosignatures included. Seq is
	// then the note's tree size, Line the checkpoint line, the other
	// fields empty; the sink sends it as a checkpoint event of its own
	// kind (docs/siems/*.md), or marks it Poison if it carries none.
	Checkpoint []byte
}

// Status is what became of one record of a batch.
type Status uint8

const (
	Pending   Status = iota // not attempted, or attempted and must be sent again (retryable)
	Delivered               // the SIEM accepted it
	Duplicate               // the SIEM already had it (e.g. Elastic 409): delivered
	Poison                  // the SIEM rejected this record itself: quarantine it
)

func (s Status) String() string {
	switch s {
	case Pending:
		return "pending"
	case Delivered:
		return "delivered"
	case Duplicate:
		return "duplicate"
	case Poison:
		return "poison"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Result reports per record, in batch order, what the SIEM did with it.
// len(Status) == len(records). Reason[i] is the SIEM's error text for a
// poison record (empty otherwise).
type Result struct {
	Status []Status
	Reason []string
}

// Class says how the shipper must react to a whole-request failure.
type Class uint8

const (
	Retryable  Class = iota // network error, timeout, 408, 429, 5xx, HEC 8/9: back off and resend
	Config                  // 401/403, index not allowed: counts toward self-pause, never acked
	TooLarge                // 413: split the batch and send the halves
	BadRequest              // 400 with no per-record position: bisect to find the poison record
	// Conflict: the store already holds another record where one of these
	// belongs (an Elasticsearch document of another chain under the same
	// seq _id, a file archive of another chain): resending cannot help
	// and skipping would ack records never stored, so the shipper stops at
	// once (self-pause) and acks none of them.
	Conflict
)

func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case Config:
		return "config"
	case TooLarge:
		return "too_large"
	case BadRequest:
		return "bad_request"
	case Conflict:
		return "conflict"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Error is a whole-request failure. Its message never contains a secret.
type Error struct {
	Class      Class
	HTTPStatus int           // 0 for a network error
	Code       int           // the SIEM's own code where it has one (HEC "code"), else -1
	RetryAfter time.Duration // from a Retry-After header, 0 if none
	Msg        string        // the SIEM's text, or the network error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s failure", e.Class)
	if e.HTTPStatus != 0 {
		s += fmt.Sprintf(": HTTP %d", e.HTTPStatus)
	}
	if e.Code >= 0 {
		s += fmt.Sprintf(" code %d", e.Code)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Sink is one SIEM intake.
type Sink interface {
	// Send delivers records as one request (or, for sinks with per-request
	// limits, as few as the limits allow) and reports per record what
	// happened. A non-nil error of type *Error means the request as a whole
	// failed and no record counts as delivered, except those the Result
	// marks Delivered/Duplicate/Poison (Result may be partially filled, as
	// with HEC's invalid-event-number). Send must be safe to call from
	// several goroutines at once (several requests in flight).
	Send(ctx context.Context, records []Record) (Result, error)
	// Check probes the SIEM with a least-privilege request and returns an
	// error a user can act on.
	Check(ctx context.Context) error
	// Close releases connections and flushes any local file.
	Close() error
}

// NewResult returns a Result for n records, all Pending.
func NewResult(n int) Result {
	return Result{Status: make([]Status, n), Reason: make([]string, n)}
}

// All sets every record still Pending to s.
func (r Result) All(s Status) Result {
	for i := range r.Status {
		if r.Status[i] == Pending {
			r.Status[i] = s
		}
	}
	return r
}

// tooLargePrefix starts the Reason of a record that is Poison for its
// size alone.
const tooLargePrefix = "too large: "

// TooLargeReason is the Reason of a record the SIEM will not take for its
// size (a 413 for it alone, a per-record limit such as Datadog's 1 MB per
// log): "too large: " and detail. The shipper quarantines it as too large,
// not as rejected.
func TooLargeReason(detail string) string { return tooLargePrefix + detail }

// NotSentReason is the TooLargeReason of a record the sink refused itself,
// before any request, for a size over the SIEM's documented per-record
// limit (Datadog's 1 MB per log, VictoriaLogs' entry limit): the SIEM never
// saw it, and the messages say so instead of "rejected by the SIEM".
func NotSentReason(detail string) string { return TooLargeReason(notSentPrefix + detail) }

const notSentPrefix = "not sent: "

// IsNotSent reports whether reason is a NotSentReason.
func IsNotSent(reason string) bool {
	return strings.HasPrefix(reason, tooLargePrefix+notSentPrefix)
}

// IsTooLarge reports whether reason is a TooLargeReason.
func IsTooLarge(reason string) bool { return strings.HasPrefix(reason, tooLargePrefix) }
