package auditread

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/auditpipe/auditpipe/lib/jsonstr"
	"github.com/valyala/fastjson"
)

// quarantined is one entry of a quarantine file (lib/ship.Quarantine):
//
//	{"quarantinedAt":…,"exporter":"…","seq":42,"recordHash":"…","reason":"…","line":{…the record line…}}
type quarantined struct {
	line []byte // the exact bytes of the "line" value: the record line as it was received
	seq  int64
	hash string
}

// parseQuarantined reads one quarantine entry. The record line is taken as
// the raw bytes of the "line" member, not re-serialised, so it is byte for
// byte the line audit-ship was given.
func parseQuarantined(p *fastjson.Parser, b []byte) (quarantined, error) {
	v, err := p.ParseBytes(b)
	if err != nil {
		return quarantined{}, fmt.Errorf("not a quarantine entry: invalid JSON: %v", err)
	}
	o, err := v.Object()
	if err != nil {
		return quarantined{}, fmt.Errorf("not a quarantine entry: a JSON %s, not an object", v.Type())
	}
	lv := o.Get("line")
	if lv == nil || lv.Type() != fastjson.TypeObject {
		return quarantined{}, errors.New(`not a quarantine entry: no "line" object (is this a plain NDJSON export? then drop --quarantine)`)
	}
	var q quarantined
	if sv := o.Get("seq"); sv != nil {
		if q.seq, err = sv.Int64(); err != nil {
			return quarantined{}, fmt.Errorf(`quarantine entry: "seq": %v`, err)
		}
	}
	q.hash = string(o.Get("recordHash").GetStringBytes())
	start, end, err := memberSpan(b, "line")
	if err != nil {
		return quarantined{}, fmt.Errorf("quarantine entry: %v", err)
	}
	q.line = b[start:end]
	return q, nil
}

// memberSpan returns the byte span of the value of the top-level member
// named key in the JSON object b. A key given twice is an error: parsers
// disagree on which one counts, and audit-ship never writes that. b must be
// valid JSON.
func memberSpan(b []byte, key string) (start, end int, err error) {
	i := jsonstr.SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, 0, errors.New("not an object")
	}
	i++
	found := false
	for {
		i = jsonstr.SkipSpace(b, i)
		if i < len(b) && b[i] == '}' {
			break
		}
		ks := i
		ke, err := skipValue(b, i)
		if err != nil {
			return 0, 0, err
		}
		name, err := strconv.Unquote(string(b[ks:ke]))
		if err != nil { // a JSON escape Go does not share (\/): compare raw
			name = string(b[ks+1 : ke-1])
		}
		i = jsonstr.SkipSpace(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, 0, errors.New("malformed object")
		}
		i = jsonstr.SkipSpace(b, i+1)
		ve, err := skipValue(b, i)
		if err != nil {
			return 0, 0, err
		}
		if name == key {
			if found {
				return 0, 0, fmt.Errorf("%q given twice", key)
			}
			start, end, found = i, ve, true
		}
		i = jsonstr.SkipSpace(b, ve)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		break
	}
	if !found {
		return 0, 0, fmt.Errorf("no %q member", key)
	}
	return start, end, nil
}

// skipValue returns the end of the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("truncated")
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1, nil
			}
		}
		return 0, errors.New("unterminated string")
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipValue(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errors.New("unterminated object or array")
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\r' && b[j] != '\n' {
		j++
	}
	return j, nil
}
