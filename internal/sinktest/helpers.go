package sinktest

import (
	"context"
	"encoding/json"
	"strings"
	"sync"

	"github.com/auditpipe/auditpipe/lib/ack"
)

// JSONString is what encoding/json makes of s, with the characters it
// escapes and the sinks keep (<, >, &, U+2028, U+2029) put back: what a
// sink must write for s.
func JSONString(s string) string {
	b, _ := json.Marshal(s)
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&", `\u2028`, "\u2028", `\u2029`, "\u2029").Replace(string(b))
}

// AckLog is a ship.AckSink that keeps the acks it is given.
type AckLog struct {
	mu   sync.Mutex
	Acks []ack.Ack
}

// Ack keeps k.
func (a *AckLog) Ack(_ context.Context, k ack.Ack) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.Acks = append(a.Acks, k)
	return nil
}

// Close does nothing.
func (a *AckLog) Close(context.Context) error { return nil }
