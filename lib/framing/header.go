// Package framing encodes and parses the lines of auditpipe's record stream
// besides the records themselves (docs/design.md, "Batch framing"): the
// batch header audit-batch writes before each batch, and the in-band marks
// audit-read writes for audit-verify (mark.go).
//
//	{"batch":{"id":17,"count":3,"bytes":1534,"firstSeq":40,"lastSeq":42,"intervalMs":250}}
//
// A batch header is followed by exactly Count record lines whose bytes are
// unchanged. An optional last key, "chain", names the hash chain the
// records belong to; it is absent in a single-chain pipeline (every
// pipeline today) and reserved for the Kafka fleet (issue 15).
//
// The parser is strict: the line must be valid JSON (RFC 8259), every
// field must be present exactly once with the right type and a sensible
// value, and the error says which field is wrong and why. Unknown keys are
// ignored, so a field can be added later without breaking older readers.
// AppendHeader(ParseHeader(x)) re-parses to the same value (a property the
// fuzz target checks).
//
// The ack lines audit-ship writes back are another protocol, with another
// reader: lib/ack.
package framing

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/auditpipe/auditpipe/lib/jsonstr"
	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/jsonfield"
)

// Header is the first line of a batch.
type Header struct {
	ID         int64 // per-process batch number, from 1
	Count      int   // number of record lines that follow, >= 1
	Bytes      int64 // sum of those lines' lengths without their '\n'
	FirstSeq   int64 // seq of the first record line
	LastSeq    int64 // seq of the last record line, >= FirstSeq
	IntervalMs int64 // the adaptive batch interval in force when the batch closed
	// Chain names the hash chain the batch's records belong to. "" (the
	// line has no "chain" key) is the single chain of one audit database:
	// every batch today. Reserved for the Kafka fleet (issue 15), where one
	// stream carries several chains; a batch holds records of one chain.
	Chain string
}

// Validate reports the first field of h that a parser would reject.
func (h Header) Validate() error {
	switch {
	case h.ID < 1:
		return fmt.Errorf("batch header: \"id\" is %d, must be >= 1", h.ID)
	case h.Count < 1:
		return fmt.Errorf("batch header: \"count\" is %d, must be >= 1", h.Count)
	case h.Bytes < 0:
		return fmt.Errorf("batch header: \"bytes\" is %d, must be >= 0", h.Bytes)
	case h.FirstSeq < 0:
		return fmt.Errorf("batch header: \"firstSeq\" is %d, must be >= 0", h.FirstSeq)
	case h.LastSeq < h.FirstSeq:
		return fmt.Errorf("batch header: \"lastSeq\" %d is below \"firstSeq\" %d", h.LastSeq, h.FirstSeq)
	case h.IntervalMs < 0:
		return fmt.Errorf("batch header: \"intervalMs\" is %d, must be >= 0", h.IntervalMs)
	case h.Chain != "":
		return CheckChain("batch header", h.Chain)
	}
	return nil
}

// AppendHeader appends the header line for h to dst, without a newline.
// "chain" is written last and only when h.Chain is not empty, so a header
// without one is byte for byte the line of batchers before it. It does not
// validate h; see Header.Validate.
func AppendHeader(dst []byte, h Header) []byte {
	dst = append(dst, `{"batch":{"id":`...)
	dst = strconv.AppendInt(dst, h.ID, 10)
	dst = append(dst, `,"count":`...)
	dst = strconv.AppendInt(dst, int64(h.Count), 10)
	dst = append(dst, `,"bytes":`...)
	dst = strconv.AppendInt(dst, h.Bytes, 10)
	dst = append(dst, `,"firstSeq":`...)
	dst = strconv.AppendInt(dst, h.FirstSeq, 10)
	dst = append(dst, `,"lastSeq":`...)
	dst = strconv.AppendInt(dst, h.LastSeq, 10)
	dst = append(dst, `,"intervalMs":`...)
	dst = strconv.AppendInt(dst, h.IntervalMs, 10)
	if h.Chain != "" {
		dst = append(dst, `,"chain":`...)
		dst = jsonfield.AppendString(dst, h.Chain)
	}
	return append(dst, "}}"...)
}

var (
	headerPrefix = []byte(`{"batch":`)
	batchKey     = []byte(`"batch"`)
	uEscape      = []byte(`\u00`)
)

// ParseHeader reports whether line is a batch header — a JSON object with a
// top-level "batch" key — and if so parses it. A header that is malformed
// (not valid JSON, a field missing, duplicated, of the wrong type or out of
// range) returns true and an error saying what is wrong. Any other line,
// including invalid JSON that does not start like a header, returns
// (Header{}, false, nil): it is the caller's business as a record line.
//
// Detection is cheap for record lines: a line that contains neither the
// text "batch" in quotes nor a \u escape of a letter (the only other way to
// spell the key) cannot have a "batch" key and is not parsed at all; a line
// starting {"batch": is parsed at once; anything else is parsed to look at
// its top-level keys, so a header written with whitespace is recognised.
// A nil p is allowed (a parser is then allocated per call).
func ParseHeader(p *fastjson.Parser, line []byte) (Header, bool, error) {
	if !bytes.HasPrefix(line, headerPrefix) && !bytes.Contains(line, batchKey) && !hasLetterEscape(line) {
		return Header{}, false, nil
	}
	if p == nil {
		p = new(fastjson.Parser)
	}
	// fastjson's parser is lenient (it takes NaN, for one), so a line it
	// reads is validated strictly only once it is known to be a header: a
	// record line is the caller's to judge.
	v, err := p.ParseBytes(line)
	if err != nil {
		if looksLikeHeader(line) {
			return Header{}, true, fmt.Errorf("batch header: invalid JSON: %v", err)
		}
		return Header{}, false, nil
	}
	top, err := v.Object()
	if err != nil {
		return Header{}, false, nil
	}
	var bv *fastjson.Value
	n := 0
	top.Visit(func(k []byte, v *fastjson.Value) {
		if string(k) == "batch" {
			bv = v
			n++
		}
	})
	if n == 0 {
		return Header{}, false, nil
	}
	if err := fastjson.ValidateBytes(line); err != nil {
		return Header{}, true, fmt.Errorf("batch header: invalid JSON: %v", err)
	}
	if n > 1 {
		return Header{}, true, fmt.Errorf("batch header: duplicate key \"batch\"")
	}
	h, err := parseHeaderBody(bv)
	return h, true, err
}

func parseHeaderBody(bv *fastjson.Value) (Header, error) {
	o, err := bv.Object()
	if err != nil {
		return Header{}, fmt.Errorf("batch header: \"batch\" must be an object, got %s", bv.Type())
	}
	var f jsonfield.Fields
	f.Want("batch header", "id", "count", "bytes", "firstSeq", "lastSeq", "intervalMs")
	o.Visit(f.Visit)
	if err := f.Check(); err != nil {
		return Header{}, err
	}
	var h Header
	var count int64
	for i, dst := range []*int64{&h.ID, &count, &h.Bytes, &h.FirstSeq, &h.LastSeq, &h.IntervalMs} {
		if *dst, err = f.Int(i); err != nil {
			return Header{}, err
		}
	}
	if count < 1 {
		return Header{}, fmt.Errorf("batch header: \"count\" is %d, must be >= 1", count)
	}
	h.Count = int(count)
	if int64(h.Count) != count {
		return Header{}, fmt.Errorf("batch header: \"count\" %d is too large", count)
	}
	var g jsonfield.Fields // the optional one
	g.Want("batch header", "chain")
	o.Visit(g.Visit)
	if g.Dup != "" {
		return Header{}, fmt.Errorf("batch header: duplicate key %q", g.Dup)
	}
	if c := g.Vals[0]; c != nil {
		cb, err := c.StringBytes()
		if err != nil {
			return Header{}, fmt.Errorf("batch header: \"chain\" must be a string, got %s", c.Type())
		}
		h.Chain = string(cb)
		if err := CheckChain("batch header", h.Chain); err != nil {
			return Header{}, err
		}
	}
	if err := h.Validate(); err != nil {
		return Header{}, err
	}
	return h, nil
}

// hasLetterEscape reports whether b may hold a \u escape of one of the
// letters of "batch" (U+0061 to U+0074: \u006X or \u007X). It may say yes
// wrongly (an escaped backslash before "u"), never no wrongly. JSON.stringify
// writes letters as they are, so records almost never have one.
func hasLetterEscape(b []byte) bool {
	for {
		i := bytes.Index(b, uEscape)
		if i < 0 || i+4 >= len(b) {
			return false
		}
		if b[i+4] == '6' || b[i+4] == '7' {
			return true
		}
		b = b[i+4:]
	}
}

// looksLikeHeader reports whether b starts, after optional whitespace, as
// {"batch": does; used only to classify lines that are not valid JSON.
func looksLikeHeader(b []byte) bool {
	i := jsonstr.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = jsonstr.SkipSpace(b, i+1)
	if !bytes.HasPrefix(b[i:], []byte(`"batch"`)) {
		return false
	}
	i = jsonstr.SkipSpace(b, i+len(`"batch"`))
	return i < len(b) && b[i] == ':'
}

// MaxChain is the longest chain id, in bytes.
const MaxChain = 128

// CheckChain reports why id cannot be the "chain" of a line of what ("ack",
// "batch header"): a chain id is 1 to MaxChain bytes of [A-Za-z0-9._:-],
// safe in a log line, a metric label and a Kafka key (the rule of the Kafka
// fleet's chain marks, issue 15: the recordHash of a chain's first record
// is such an id). An absent chain is the empty string and is not checked.
func CheckChain(what, id string) error {
	if id == "" {
		return fmt.Errorf("%s: \"chain\" is empty", what)
	}
	if len(id) > MaxChain {
		return fmt.Errorf("%s: \"chain\" is %d bytes, at most %d", what, len(id), MaxChain)
	}
	if i := badChainByte(id); i >= 0 {
		return fmt.Errorf("%s: \"chain\" %s: byte %d is not one of [A-Za-z0-9._:-]", what, jsonfield.Clip([]byte(id)), i)
	}
	return nil
}

// ValidChainID reports why id cannot be a chain id (the rule of CheckChain,
// worded for a flag or a mark rather than a line's field).
func ValidChainID(id string) error {
	if id == "" || len(id) > MaxChain {
		return fmt.Errorf("chain id must be 1 to %d bytes, has %d", MaxChain, len(id))
	}
	if i := badChainByte(id); i >= 0 {
		return fmt.Errorf("chain id %q: byte %d is not one of [A-Za-z0-9._:-]", id, i)
	}
	return nil
}

// badChainByte returns the index of the first byte of id outside
// [A-Za-z0-9._:-], or -1.
func badChainByte(id string) int {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return i
		}
	}
	return -1
}
