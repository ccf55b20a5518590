// Package exitcode is the one exit-code table shared by every auditpipe binary.
//
// Only a command's Main turns an error into an exit code; everything below it
// returns errors, wrapping them with New when the code is not the default 1.
package exitcode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// The exit codes. They are part of the public contract: scripts and systemd
// units test them, so a code never changes meaning.
const (
	OK       = 0 // success; also a clean stop on the first SIGINT/SIGTERM
	Failure  = 1 // runtime failure: I/O, network, internal error
	Usage    = 2 // bad flags, config file or secret reference
	Verify   = 3 // chain verification failed: tampering or corruption found
	Input    = 4 // malformed input: bad JSON, bad field, line too long, truncated line
	Database = 5 // database missing, not an audit database, corrupt, or locked too long
	Paused   = 6 // shipper self-paused after consecutive non-retryable SIEM failures
	Config   = 7 // the SIEM refused our configuration (401/403, bad index): fix and restart
	// Incomplete: audit-ship stopped before everything it delivered was
	// handed to audit-ack (nobody read the ack FIFO within --drain-timeout),
	// or gave up on a failing SIEM (--give-up-after). Nothing is lost: what
	// was not acked is shipped again from the cursor by the next run.
	Incomplete = 8
	Pipe       = 141 // downstream closed the pipe (128+SIGPIPE); nothing is printed
	Killed     = 130 // a second signal forced an immediate stop (128+SIGINT)
)

// Table is the exit-code table as printed by -h and in the README.
const Table = `Exit codes (shared by all auditpipe binaries):
  0    ok (also a clean stop on the first SIGINT/SIGTERM)
  1    runtime failure (I/O, network, internal error)
  2    usage: bad flags, config file or secret reference
  3    verification failed: the chain is broken (tampering or corruption)
  4    malformed input: bad JSON, bad field, line too long, truncated last line
  5    database: missing, not an audit database, corrupt, or locked too long
  6    paused: consecutive non-retryable SIEM failures; fix, then restart
  7    SIEM configuration rejected (401/403, index not allowed): fix, then restart
  8    incomplete: acks not handed to audit-ack, or gave up on a failing SIEM
       (--give-up-after); nothing lost, the next run re-sends from the cursor
  130  forced stop by a second signal
  141  downstream closed the pipe (quiet)
  143  killed by a SIGTERM in its first milliseconds, before it could take it (nothing done)
`

// Error carries an exit code with the error that caused it.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New wraps err with an exit code. New(code, nil) returns nil.
func New(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Errorf is fmt.Errorf with an exit code.
func Errorf(code int, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

// Of maps an error to its exit code: nil is OK, a context cancellation is OK
// (the process was asked to stop and stopped cleanly), a broken pipe is Pipe,
// an *Error its own code, anything else Failure.
func Of(err error) int {
	if err == nil {
		return OK
	}
	// A stop wins over any code a stage wrapped around the read or write
	// that saw it (an input error around a read of stdin, say).
	if errors.Is(err, ErrStopped) {
		return OK
	}
	if errors.Is(err, ErrOutputClosed) {
		return Pipe
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if IsBrokenPipe(err) {
		return Pipe
	}
	if errors.Is(err, context.Canceled) {
		return OK
	}
	return Failure
}

// ErrStopped is what a read of stdin (or a write of stdout that the
// downstream no longer takes) returns after the first SIGINT or SIGTERM
// (package cli). It matches context.Canceled: a clean stop, exit 0. Its text
// never says "broken pipe", so a stage that keeps its summary back on a
// broken pipe prints it after a stop.
var ErrStopped error = stopError{}

type stopError struct{}

func (stopError) Error() string        { return "stopped by a signal" }
func (stopError) Is(target error) bool { return target == context.Canceled }

// ErrOutputClosed is what a read of stdin returns once the reader of stdout
// went away (package cli): it matches syscall.EPIPE, so the stage exits 141
// quietly, as after a write to the closed pipe.
var ErrOutputClosed error = outputClosed{}

type outputClosed struct{}

func (outputClosed) Error() string        { return "stdout closed: broken pipe" }
func (outputClosed) Is(target error) bool { return target == syscall.EPIPE }

// IsBrokenPipe reports whether err is a write to a closed pipe.
func IsBrokenPipe(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.EPIPE) {
		return true
	}
	return strings.Contains(err.Error(), "broken pipe")
}
