package ack

import (
	"fmt"
	"github.com/auditpipe/auditpipe/lib/chain"
	"strconv"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/jsonfield"
)

// Ack says that every record from FirstSeq to LastSeq was delivered to the
// exporter's SIEM, or quarantined and named in Quarantined.
type Ack struct {
	Exporter string // "<kind>:<instance>", e.g. "splunk:prod"; non-empty
	// Chain names the hash chain the records belong to. "" (the line has
	// no "chain" key) is the single chain of one audit database: every
	// ack today. Reserved for the Kafka fleet (issue 15), where one
	// stream carries several chains; see the package doc.
	Chain       string
	FirstSeq    int64   // >= 0
	LastSeq     int64   // >= FirstSeq
	LastHash    string  // recordHash of the record LastSeq: 64 lowercase hex
	Count       int     // records covered, >= 1
	Quarantined []int64 // seqs within [FirstSeq, LastSeq], strictly ascending; nil when none
	// Since and SinceCount say what the shipper that wrote the ack has
	// delivered in its run: every record it received from seq Since to
	// LastSeq, SinceCount records in all (Count included), was delivered
	// or quarantined and named in an ack. Since is the first seq it
	// received. They let audit-ack take an ack whose FirstSeq is past its
	// cursor when the acks between were lost (an acker killed after
	// reading them), and check the claim against the database. SinceCount
	// 0: not given (an ack of an older shipper, or written by hand).
	Since      int64 // <= FirstSeq, >= 0
	SinceCount int64 // >= Count when given
}

// Validate reports the first field of a that Parse would reject.
func (a Ack) Validate() error {
	if err := jsonfield.CheckName("ack", "exporter", a.Exporter); err != nil {
		return err
	}
	if a.Chain != "" {
		if err := framing.CheckChain("ack", a.Chain); err != nil {
			return err
		}
	}
	if a.FirstSeq < 0 {
		return fmt.Errorf("ack: \"firstSeq\" is %d, must be >= 0", a.FirstSeq)
	}
	if a.LastSeq < a.FirstSeq {
		return fmt.Errorf("ack: \"firstSeq\" %d is above \"lastSeq\" %d", a.FirstSeq, a.LastSeq)
	}
	if !chain.IsHexHashString(a.LastHash) {
		return fmt.Errorf("ack: \"lastHash\" must be 64 lowercase hex digits, got %s", jsonfield.Clip([]byte(a.LastHash)))
	}
	if a.Count < 1 {
		return fmt.Errorf("ack: \"count\" is %d, must be >= 1", a.Count)
	}
	if len(a.Quarantined) > a.Count {
		return fmt.Errorf("ack: %d quarantined seqs but \"count\" is %d", len(a.Quarantined), a.Count)
	}
	if a.SinceCount != 0 || a.Since != 0 {
		if a.SinceCount == 0 {
			return fmt.Errorf("ack: \"since\" without \"sinceCount\"")
		}
		if a.Since < 0 {
			return fmt.Errorf("ack: \"since\" is %d, must be >= 0", a.Since)
		}
		if a.Since > a.FirstSeq {
			return fmt.Errorf("ack: \"since\" %d is above \"firstSeq\" %d", a.Since, a.FirstSeq)
		}
		if a.SinceCount < int64(a.Count) {
			return fmt.Errorf("ack: \"sinceCount\" is %d, below \"count\" %d", a.SinceCount, a.Count)
		}
	}
	for i, q := range a.Quarantined {
		if q < a.FirstSeq || q > a.LastSeq {
			return fmt.Errorf("ack: quarantined seq %d is outside [%d, %d]", q, a.FirstSeq, a.LastSeq)
		}
		if i > 0 && q <= a.Quarantined[i-1] {
			return fmt.Errorf("ack: \"quarantined\" must be strictly ascending: %d after %d", q, a.Quarantined[i-1])
		}
	}
	return nil
}

// Append appends the ack line for a to dst, without a newline. The
// exporter and chain are JSON-escaped; "chain" is written only when
// a.Chain is not empty (so an ack without one is byte for byte the line of
// shippers before it); Quarantined is written as [] when empty. It does not
// validate a; see Ack.Validate.
func Append(dst []byte, a Ack) []byte {
	dst = append(dst, `{"ack":{"exporter":`...)
	dst = jsonfield.AppendString(dst, a.Exporter)
	if a.Chain != "" {
		dst = append(dst, `,"chain":`...)
		dst = jsonfield.AppendString(dst, a.Chain)
	}
	dst = append(dst, `,"firstSeq":`...)
	dst = strconv.AppendInt(dst, a.FirstSeq, 10)
	dst = append(dst, `,"lastSeq":`...)
	dst = strconv.AppendInt(dst, a.LastSeq, 10)
	dst = append(dst, `,"lastHash":`...)
	dst = jsonfield.AppendString(dst, a.LastHash)
	dst = append(dst, `,"count":`...)
	dst = strconv.AppendInt(dst, int64(a.Count), 10)
	if a.SinceCount != 0 {
		dst = append(dst, `,"since":`...)
		dst = strconv.AppendInt(dst, a.Since, 10)
		dst = append(dst, `,"sinceCount":`...)
		dst = strconv.AppendInt(dst, a.SinceCount, 10)
	}
	dst = append(dst, `,"quarantined":[`...)
	for i, q := range a.Quarantined {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, q, 10)
	}
	return append(dst, "]}}"...)
}

// Parse parses one ack line (without its newline) strictly: valid JSON, an
// object whose "ack" key holds an object with every field present once and
// valid (see Ack.Validate); "since" and "sinceCount" may be absent (both),
// as in the acks of shippers before them, and "chain" may be absent. Unknown
// keys are ignored. The error names the field and what is wrong with it.
// A nil p is allowed (a parser is then allocated per call).
func Parse(p *fastjson.Parser, line []byte) (Ack, error) {
	if err := fastjson.ValidateBytes(line); err != nil {
		return Ack{}, fmt.Errorf("ack: invalid JSON: %v", err)
	}
	if p == nil {
		p = new(fastjson.Parser)
	}
	v, err := p.ParseBytes(line)
	if err != nil {
		return Ack{}, fmt.Errorf("ack: invalid JSON: %v", err)
	}
	top, err := v.Object()
	if err != nil {
		return Ack{}, fmt.Errorf("ack: the line must be a JSON object, got %s", v.Type())
	}
	var tf jsonfield.Fields
	tf.Want("ack", "ack")
	top.Visit(tf.Visit)
	if err := tf.Check(); err != nil {
		return Ack{}, fmt.Errorf("%w (not an ack line)", err)
	}
	o, err := tf.Vals[0].Object()
	if err != nil {
		return Ack{}, fmt.Errorf("ack: \"ack\" must be an object, got %s", tf.Vals[0].Type())
	}
	var f jsonfield.Fields
	f.Want("ack", "exporter", "firstSeq", "lastSeq", "lastHash", "count", "quarantined")
	o.Visit(f.Visit)
	if err := f.Check(); err != nil {
		return Ack{}, err
	}
	var g jsonfield.Fields // the optional ones
	g.Want("ack", "since", "sinceCount", "chain")
	o.Visit(g.Visit)
	if g.Dup != "" {
		return Ack{}, fmt.Errorf("ack: duplicate key %q", g.Dup)
	}
	var a Ack
	switch {
	case g.Vals[0] != nil && g.Vals[1] != nil:
		if a.Since, err = g.Int(0); err != nil {
			return Ack{}, err
		}
		if a.SinceCount, err = g.Int(1); err != nil {
			return Ack{}, err
		}
		if a.SinceCount < 1 {
			return Ack{}, fmt.Errorf("ack: \"sinceCount\" is %d, must be >= 1", a.SinceCount)
		}
	case g.Vals[0] != nil:
		return Ack{}, fmt.Errorf("ack: \"since\" without \"sinceCount\"")
	case g.Vals[1] != nil:
		return Ack{}, fmt.Errorf("ack: \"sinceCount\" without \"since\"")
	}
	if c := g.Vals[2]; c != nil {
		cb, err := c.StringBytes()
		if err != nil {
			return Ack{}, fmt.Errorf("ack: \"chain\" must be a string, got %s", c.Type())
		}
		a.Chain = string(cb)
		if err := framing.CheckChain("ack", a.Chain); err != nil {
			return Ack{}, err
		}
	}
	exp, err := f.Vals[0].StringBytes()
	if err != nil {
		return Ack{}, fmt.Errorf("ack: \"exporter\" must be a string, got %s", f.Vals[0].Type())
	}
	a.Exporter = string(exp)
	if a.FirstSeq, err = f.Int(1); err != nil {
		return Ack{}, err
	}
	if a.LastSeq, err = f.Int(2); err != nil {
		return Ack{}, err
	}
	h, err := f.Vals[3].StringBytes()
	if err != nil {
		return Ack{}, fmt.Errorf("ack: \"lastHash\" must be a string, got %s", f.Vals[3].Type())
	}
	a.LastHash = string(h)
	count, err := f.Int(4)
	if err != nil {
		return Ack{}, err
	}
	a.Count = int(count)
	if int64(a.Count) != count || count < 1 {
		return Ack{}, fmt.Errorf("ack: \"count\" is %d, must be >= 1", count)
	}
	arr, err := f.Vals[5].Array()
	if err != nil {
		return Ack{}, fmt.Errorf("ack: \"quarantined\" must be an array, got %s", f.Vals[5].Type())
	}
	if len(arr) > 0 {
		a.Quarantined = make([]int64, len(arr))
		for i, e := range arr {
			if e.Type() != fastjson.TypeNumber {
				return Ack{}, fmt.Errorf("ack: \"quarantined\"[%d] must be an integer, got %s", i, e.Type())
			}
			f.Buf = e.MarshalTo(f.Buf[:0])
			if a.Quarantined[i], err = strconv.ParseInt(string(f.Buf), 10, 64); err != nil {
				return Ack{}, fmt.Errorf("ack: \"quarantined\"[%d] must be an integer, got %s", i, jsonfield.Clip(f.Buf))
			}
		}
	}
	if err := a.Validate(); err != nil {
		return Ack{}, err
	}
	return a, nil
}
