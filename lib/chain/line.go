package chain

import (
	"errors"
	"fmt"

	"github.com/auditpipe/auditpipe/lib/elide"
	"github.com/auditpipe/auditpipe/lib/jsonstr"
)

// Record is one parsed record line (docs/contract.md section 2). Its byte slices
// alias the line passed to Parse (or the parser's scratch space) and are valid
// until the next call to Parse.
type Record struct {
	Seq        int64
	TS         int64
	TenantID   []byte
	Kind       []byte
	Raw        []byte // the exact bytes of the "record" value
	PrevHash   []byte // "" or 64 lowercase hex
	RecordHash []byte // 64 lowercase hex
	RecordKind []byte // the record object's own "kind" ("erased" for a tombstone)

	hashed bool // the verifier's fast path matched Raw's hash already
}

// ParseError is a record line that could not be used: Reason is ReasonBadJSON
// or ReasonBadField, Col the 1-based byte column where the problem is (0 if
// it concerns a missing field).
type ParseError struct {
	Reason Reason
	Col    int
	Msg    string
}

func (e *ParseError) Error() string {
	if e.Col > 0 {
		return fmt.Sprintf("%s at byte %d: %s", e.Reason, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Msg)
}

// LineParser parses record lines. It validates the whole line as strict JSON
// (RFC 8259: no control characters in strings, no NaN, no trailing garbage)
// in one pass without allocating, and keeps the raw span of "record" so the
// verifier can hash its bytes as they stand. A LineParser is not safe for
// concurrent use; keep one per goroutine.
type LineParser struct {
	scratch []byte
}

// MaxDepth bounds JSON nesting; deeper input is rejected rather than risking
// the stack.
const MaxDepth = 1000

var errDepth = errors.New("nesting deeper than 1000 levels")

const (
	fSeq = 1 << iota
	fTS
	fTenant
	fKind
	fRecord
	fPrev
	fHash
	fAll = fSeq | fTS | fTenant | fKind | fRecord | fPrev | fHash
)

// Parse parses one record line.
func (p *LineParser) Parse(b []byte) (Record, error) {
	var r Record
	p.scratch = p.scratch[:0]
	i := jsonstr.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return r, badJSON(i, "a record line must be a JSON object")
	}
	i++
	var seen int
	i = jsonstr.SkipSpace(b, i)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			i = jsonstr.SkipSpace(b, i)
			if i >= len(b) || b[i] != '"' {
				return r, badJSON(i, "expected a string key")
			}
			ks := i
			ke, esc, _, bad := jsonstr.Scan(b, i)
			if bad != jsonstr.OK {
				return r, scanError(b, i, ke, bad)
			}
			key := b[ks+1 : ke-1]
			if esc {
				key = jsonstr.Unescape(nil, key)
			}
			i = jsonstr.SkipSpace(b, ke)
			if i >= len(b) || b[i] != ':' {
				return r, badJSON(i, "expected ':' after key")
			}
			i = jsonstr.SkipSpace(b, i+1)
			vs := i
			var ve, kindStart, kindEnd int
			var err error
			if string(key) == "record" && i < len(b) && b[i] == '{' {
				ve, kindStart, kindEnd, err = skipRecord(b, i)
			} else {
				ve, err = skipValue(b, i, 1)
			}
			if err != nil {
				return r, err
			}
			val := b[vs:ve]
			var bit int
			switch string(key) {
			case "seq":
				bit = fSeq
				n, ok := parseInt(val)
				if !ok || n < 1 {
					return r, badField(vs, "seq must be a positive integer, got %s", elide.To(val, 80))
				}
				r.Seq = n
			case "ts":
				bit = fTS
				n, ok := parseInt(val)
				if !ok {
					return r, badField(vs, "ts must be an integer (ms since the epoch), got %s", elide.To(val, 80))
				}
				r.TS = n
			case "tenantId":
				bit = fTenant
				if val[0] != '"' {
					return r, badField(vs, "tenantId must be a string, got %s", elide.To(val, 80))
				}
				r.TenantID = p.str(val)
			case "kind":
				bit = fKind
				if val[0] != '"' {
					return r, badField(vs, "kind must be a string, got %s", elide.To(val, 80))
				}
				r.Kind = p.str(val)
			case "record":
				bit = fRecord
				if val[0] != '{' {
					return r, badField(vs, "record must be an object, got %s", elide.To(val, 80))
				}
				r.Raw = val
				r.RecordKind = p.str(b[kindStart:kindEnd])
			case "prevHash":
				bit = fPrev
				if val[0] != '"' || !(len(val) == 2 || IsHexHash(val[1:len(val)-1])) {
					return r, badField(vs, "prevHash must be empty or 64 lowercase hex characters, got %s", elide.To(val, 80))
				}
				r.PrevHash = val[1 : len(val)-1]
			case "recordHash":
				bit = fHash
				if val[0] != '"' || !IsHexHash(val[1:len(val)-1]) {
					return r, badField(vs, "recordHash must be 64 lowercase hex characters, got %s", elide.To(val, 80))
				}
				r.RecordHash = val[1 : len(val)-1]
			}
			if bit != 0 {
				if seen&bit != 0 {
					return r, badField(ks, "duplicate key %q", key)
				}
				seen |= bit
			}
			i = jsonstr.SkipSpace(b, ve)
			if i < len(b) && b[i] == ',' {
				i++
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return r, badJSON(i, "expected ',' or '}' in object")
		}
	}
	if i = jsonstr.SkipSpace(b, i); i != len(b) {
		return r, badJSON(i, "unexpected data after the JSON object")
	}
	if seen != fAll {
		return r, &ParseError{Reason: ReasonBadField, Msg: "missing field(s): " + missing(seen)}
	}
	return r, nil
}

// skipRecord validates the record object at b[i] == '{' and also returns
// the span of its top-level "kind" string token (the last one, as JSON.parse
// keeps; 0, 0 when it has none).
func skipRecord(b []byte, i int) (end, kindStart, kindEnd int, err error) {
	none := true
	i = jsonstr.SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, 0, 0, nil
	}
	for {
		i = jsonstr.SkipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return 0, 0, 0, badJSON(i, "expected a string key")
		}
		ks := i
		e, _, _, bad := jsonstr.Scan(b, i)
		if bad != jsonstr.OK {
			return 0, 0, 0, scanError(b, i, e, bad)
		}
		isKind := string(b[ks:e]) == `"kind"`
		i = jsonstr.SkipSpace(b, e)
		if i >= len(b) || b[i] != ':' {
			return 0, 0, 0, badJSON(i, "expected ':' after key")
		}
		vs := jsonstr.SkipSpace(b, i+1)
		i, err = skipValue(b, vs, 2)
		if err != nil {
			return 0, 0, 0, err
		}
		if isKind && b[vs] == '"' {
			kindStart, kindEnd, none = vs, i, false
		}
		i = jsonstr.SkipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			if none {
				return i + 1, 0, 0, nil
			}
			return i + 1, kindStart, kindEnd, nil
		}
		return 0, 0, 0, badJSON(i, "expected ',' or '}' in object")
	}
}

// str returns the contents of a validated JSON string token, unescaped
// (nil for an empty token).
func (p *LineParser) str(tok []byte) []byte {
	if len(tok) < 2 {
		return nil
	}
	inner := tok[1 : len(tok)-1]
	for _, c := range inner {
		if c == '\\' {
			start := len(p.scratch)
			p.scratch = jsonstr.Unescape(p.scratch, inner)
			return p.scratch[start:len(p.scratch):len(p.scratch)]
		}
	}
	return inner
}

func missing(seen int) string {
	names := []string{"seq", "ts", "tenantId", "kind", "record", "prevHash", "recordHash"}
	s := ""
	for i, n := range names {
		if seen&(1<<i) == 0 {
			if s != "" {
				s += ", "
			}
			s += n
		}
	}
	return s
}

func badJSON(i int, msg string) error {
	return &ParseError{Reason: ReasonBadJSON, Col: i + 1, Msg: msg}
}

func badField(i int, format string, args ...any) error {
	return &ParseError{Reason: ReasonBadField, Col: i + 1, Msg: fmt.Sprintf(format, args...)}
}

// parseInt parses a JSON integer token (no fraction, no exponent) into int64.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n int64
	if len(b) < 19 {
		// Up to 18 digits cannot overflow an int64: no bound to test (the
		// division of the test below, once per digit, was a noticeable
		// part of parsing a line's seq and ts).
		for _, c := range b {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n, true
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		n = -n
	}
	return n, true
}

// scanError words jsonstr.Scan's problem p, found at b[at] in the string
// token starting at b[start], as a ParseError. (The scanner is called
// directly where a string is scanned, not through a wrapper: it is the hot
// loop of Parse.)
func scanError(b []byte, start, at int, p jsonstr.Problem) error {
	switch p {
	case jsonstr.Unterminated:
		return badJSON(start, "unterminated string")
	case jsonstr.UnterminatedEscape:
		return badJSON(at, "unterminated escape")
	case jsonstr.BadUnicodeEscape:
		return badJSON(at, `bad \u escape`)
	case jsonstr.BadEscape:
		return badJSON(at, fmt.Sprintf("bad escape \\%c", b[at+1]))
	case jsonstr.BadUTF8:
		return badJSON(at, "invalid UTF-8 in string")
	default:
		return badJSON(at, fmt.Sprintf("control character 0x%02x in string (must be escaped)", b[at]))
	}
}

// skipValue validates the JSON value starting at b[i] and returns the index
// just after it.
func skipValue(b []byte, i, depth int) (int, error) {
	if depth > MaxDepth {
		return 0, &ParseError{Reason: ReasonBadJSON, Col: i + 1, Msg: errDepth.Error()}
	}
	if i >= len(b) {
		return 0, badJSON(i, "unexpected end of line: value expected")
	}
	switch c := b[i]; {
	case c == '"':
		e, _, _, bad := jsonstr.Scan(b, i)
		if bad != jsonstr.OK {
			return 0, scanError(b, i, e, bad)
		}
		return e, nil
	case c == '{':
		i = jsonstr.SkipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		for {
			i = jsonstr.SkipSpace(b, i)
			if i >= len(b) || b[i] != '"' {
				return 0, badJSON(i, "expected a string key")
			}
			e, _, _, bad := jsonstr.Scan(b, i)
			if bad != jsonstr.OK {
				return 0, scanError(b, i, e, bad)
			}
			i = jsonstr.SkipSpace(b, e)
			if i >= len(b) || b[i] != ':' {
				return 0, badJSON(i, "expected ':' after key")
			}
			var err error
			i, err = skipValue(b, jsonstr.SkipSpace(b, i+1), depth+1)
			if err != nil {
				return 0, err
			}
			i = jsonstr.SkipSpace(b, i)
			if i < len(b) && b[i] == ',' {
				i++
				continue
			}
			if i < len(b) && b[i] == '}' {
				return i + 1, nil
			}
			return 0, badJSON(i, "expected ',' or '}' in object")
		}
	case c == '[':
		i = jsonstr.SkipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			i, err = skipValue(b, jsonstr.SkipSpace(b, i), depth+1)
			if err != nil {
				return 0, err
			}
			i = jsonstr.SkipSpace(b, i)
			if i < len(b) && b[i] == ',' {
				i++
				continue
			}
			if i < len(b) && b[i] == ']' {
				return i + 1, nil
			}
			return 0, badJSON(i, "expected ',' or ']' in array")
		}
	case c == '-' || c >= '0' && c <= '9':
		return skipNumber(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	default:
		return 0, badJSON(i, fmt.Sprintf("unexpected character %q", c))
	}
}

func literal(b []byte, i int, lit string) (int, error) {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit), nil
	}
	return 0, badJSON(i, "invalid literal")
}

// skipNumber validates a JSON number: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
func skipNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return 0, badJSON(start, "invalid number")
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return 0, badJSON(start, "invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, badJSON(start, "invalid number: digit expected after '.'")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, badJSON(start, "invalid number: digit expected in exponent")
		}
	}
	return i, nil
}

// ParseEnvelope parses a record line for a stage that carries the record
// without reading it (audit-batch, audit-ship): a line in audit-read's
// layout has everything but the record object checked strictly, and the
// record is only known to be delimited by '{' and '}' (audit-verify is what
// proves it); any other line is parsed in full, as Parse does.
func (p *LineParser) ParseEnvelope(b []byte) (Record, error) {
	if r, ok := p.parseShape(b); ok {
		return r, nil
	}
	return p.Parse(b)
}

// The layout audit-read writes (auditdb.AppendLine), in this order and with
// no whitespace:
//
//	{"seq":N,"ts":N,"tenantId":"…","kind":"…","record":{…},"prevHash":"…","recordHash":"…"}
const (
	shapeSeq    = `{"seq":`
	shapeTS     = `,"ts":`
	shapeTenant = `,"tenantId":`
	shapeKind   = `,"kind":`
	shapeRecord = `,"record":`
	shapePrev   = `,"prevHash":"`
	shapeHash   = `,"recordHash":"`
)

// parseShape recognises a line in exactly the layout audit-read writes and
// returns its fields without looking inside the record: Raw is only known to
// start with '{' and end with '}'. Everything outside the record is checked
// as strictly as Parse checks it. ok is false for any other layout (keys in
// another order, whitespace, escapes in the hashes, …): then Parse decides.
//
// This is the fast path's parser. It is sound because the verifier accepts
// a record parsed this way only if SHA-256(prevHash "\n" Raw) equals the
// recordHash: then Raw is byte for byte what the writer hashed, its
// canonical JSON, and validating it again proves nothing more. A record
// whose hash does not match is parsed again with Parse, so a malformed one
// is still reported as bad JSON with its column.
func (p *LineParser) parseShape(b []byte) (r Record, ok bool) {
	p.scratch = p.scratch[:0]
	const minTail = len(shapePrev) + 1 + len(shapeHash) + 64 + 2
	if len(b) < len(shapeSeq)+1+len(shapeTS)+1+len(shapeTenant)+2+len(shapeKind)+2+len(shapeRecord)+2+minTail ||
		string(b[:len(shapeSeq)]) != shapeSeq {
		return r, false
	}
	i := len(shapeSeq)
	if r.Seq, i, ok = shapeInt(b, i); !ok || r.Seq < 1 || !hasAt(b, i, shapeTS) {
		return r, false
	}
	if r.TS, i, ok = shapeInt(b, i+len(shapeTS)); !ok || !hasAt(b, i, shapeTenant) {
		return r, false
	}
	if r.TenantID, i, ok = p.shapeString(b, i+len(shapeTenant)); !ok || !hasAt(b, i, shapeKind) {
		return r, false
	}
	if r.Kind, i, ok = p.shapeString(b, i+len(shapeKind)); !ok || !hasAt(b, i, shapeRecord) {
		return r, false
	}
	i += len(shapeRecord)
	// The tail, from the end: `,"recordHash":"<64 hex>"}` preceded by
	// `,"prevHash":""` or `,"prevHash":"<64 hex>"`.
	n := len(b)
	if b[n-1] != '}' || b[n-2] != '"' {
		return r, false
	}
	r.RecordHash = b[n-66 : n-2]
	h := n - 66 - len(shapeHash) // where `,"recordHash":"` starts
	if !IsHexHash(r.RecordHash) || !hasAt(b, h, shapeHash) || b[h-1] != '"' {
		return r, false
	}
	var end int // where `,"prevHash":"` starts: the record ends there
	if b[h-2] == '"' {
		end = h - 1 - len(shapePrev)
		r.PrevHash = b[h-1 : h-1]
	} else {
		end = h - 1 - 64 - len(shapePrev)
		if end < i {
			return r, false
		}
		r.PrevHash = b[h-65 : h-1]
		if !IsHexHash(r.PrevHash) {
			return r, false
		}
	}
	if end < i+2 || !hasAt(b, end, shapePrev) || b[i] != '{' || b[end-1] != '}' {
		return r, false
	}
	r.Raw = b[i:end]
	return r, true
}

// hasAt reports whether b holds s at i.
func hasAt(b []byte, i int, s string) bool {
	return i >= 0 && i+len(s) <= len(b) && string(b[i:i+len(s)]) == s
}

// shapeInt reads a JSON integer (optional '-', no leading zeros) at b[i] and
// returns it and the index after it.
func shapeInt(b []byte, i int) (int64, int, bool) {
	s := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	d := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == d || (b[d] == '0' && i > d+1) {
		return 0, 0, false
	}
	n, ok := parseInt(b[s:i])
	return n, i, ok
}

// shapeString reads a strictly valid JSON string token at b[i] and returns
// its unescaped contents and the index after it.
func (p *LineParser) shapeString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	e, _, _, bad := jsonstr.Scan(b, i)
	if bad != jsonstr.OK {
		return nil, 0, false
	}
	return p.str(b[i:e]), e, true
}
