package batcher

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/valyala/fastjson"
)

var seqPrefix = []byte(`{"seq":`)

// RecordSeq returns the seq of a record line (docs/contract.md section 2), which
// must be a non-negative integer. audit-batch does not verify records
// (audit-verify did), it only needs the seq for the batch header, so the
// usual line — one that starts {"seq":N, or {"seq":N} and ends with "}" —
// costs a few nanoseconds; any other line is parsed with fastjson and must
// be a JSON object with an integer "seq".
func RecordSeq(p *fastjson.Parser, line []byte) (int64, error) {
	if bytes.HasPrefix(line, seqPrefix) && line[len(line)-1] == '}' {
		i := len(seqPrefix)
		var n int64
		j := i
		for ; j < len(line) && j-i < 18 && line[j] >= '0' && line[j] <= '9'; j++ {
			n = n*10 + int64(line[j]-'0')
		}
		// 1 to 18 digits, no leading zero, then ',' or '}': an int64 that
		// cannot overflow. Anything else takes the slow path.
		if j > i && j < len(line) && (line[j] == ',' || line[j] == '}') && (line[i] != '0' || j == i+1) {
			return n, nil
		}
	}
	return recordSeqSlow(p, line)
}

func recordSeqSlow(p *fastjson.Parser, line []byte) (int64, error) {
	if p == nil {
		p = new(fastjson.Parser)
	}
	v, err := p.ParseBytes(line)
	if err != nil {
		return 0, fmt.Errorf("not a record: invalid JSON: %v", err)
	}
	o, err := v.Object()
	if err != nil {
		return 0, fmt.Errorf("not a record: a JSON %s, not an object", v.Type())
	}
	s := o.Get("seq")
	if s == nil {
		return 0, fmt.Errorf(`not a record: no "seq"`)
	}
	if s.Type() != fastjson.TypeNumber {
		return 0, fmt.Errorf(`not a record: "seq" is a %s, not an integer`, s.Type())
	}
	raw := s.String()
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, fmt.Errorf(`not a record: "seq" %s is not a 64-bit integer`, clip(raw))
	}
	if n < 0 {
		return 0, fmt.Errorf(`not a record: "seq" %d is negative`, n)
	}
	return n, nil
}

func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}
