package ship

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// Quarantine is the dead-letter file: one JSON line per record the SIEM
// rejected as poison, with what the SIEM said, appended and fsynced before
// the batch is acked. The record line is embedded as it was received (it is
// a JSON object), so its bytes survive:
//
//	{"quarantinedAt":1764244800123,"exporter":"splunk:prod","seq":42,"recordHash":"…","reason":"HTTP 400 code 6: Invalid data format","line":{"seq":42,…}}
//
// The file is created 0600. Re-ship it with
// `audit-read --quarantine FILE | audit-verify --mode report | audit-ship ...`
// (audit-read emits the "line" bytes as they are; jq -c .line would
// re-serialise them).
type Quarantine struct {
	mu   sync.Mutex
	path string
	f    *os.File
	buf  []byte
	now  func() time.Time // the clock of "quarantinedAt"; time.Now
}

// OpenQuarantine opens (creating 0600) the quarantine file for appending.
func OpenQuarantine(path string) (*Quarantine, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open quarantine: %w", err)
	}
	return &Quarantine{path: path, f: f, now: time.Now}, nil
}

// Path is the file's path.
func (q *Quarantine) Path() string { return q.path }

// Put appends one record and syncs the file.
func (q *Quarantine) Put(exporter string, r *sink.Record, reason string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.buf[:0]
	b = append(b, `{"quarantinedAt":`...)
	b = strconv.AppendInt(b, q.now().UnixMilli(), 10)
	b = append(b, `,"exporter":`...)
	b = appendJSONString(b, exporter)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, r.Seq, 10)
	b = append(b, `,"recordHash":"`...)
	b = append(b, r.Hash...)
	b = append(b, `","reason":`...)
	b = appendJSONString(b, reason)
	b = append(b, `,"line":`...)
	b = append(b, r.Line...)
	b = append(b, "}\n"...)
	q.buf = b
	if _, err := q.f.Write(b); err != nil {
		return err
	}
	return q.f.Sync()
}

// Close closes the file.
func (q *Quarantine) Close() error { return q.f.Close() }

// appendJSONString writes s as a JSON string (valid UTF-8 assumed; invalid
// bytes are replaced by U+FFFD so the line stays valid JSON).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&15])
		default:
			b = append(b, string(r)...)
		}
	}
	return append(b, '"')
}
