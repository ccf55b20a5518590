package chain

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Hold says that audit-verify holds a chain (issue 15): none of its records
// from Seq on will be passed on, so none will be acked. audit-verify --holds
// writes it, one line, to audit-consume's ack FIFO, beside audit-ship's ack
// lines:
//
//	{"hold":{"chain":"<id>","seq":7,"reason":"hash_mismatch"}}
//
// audit-consume then stops counting the chain's records in flight (its
// back-pressure bound stays for the chains that flow) and keeps the
// partition's committed offset at the chain's first record not delivered.
type Hold struct {
	Chain  string
	Seq    int64 // the first seq not passed on (0: unknown)
	Reason string
}

// AppendHold appends h's line, without a newline.
func AppendHold(dst []byte, h Hold) []byte {
	dst = append(dst, `{"hold":{"chain":`...)
	dst = appendJSONString(dst, h.Chain)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, h.Seq, 10)
	dst = append(dst, `,"reason":`...)
	dst = appendJSONString(dst, h.Reason)
	return append(dst, "}}"...)
}

// HoldPrefix starts every hold line.
var HoldPrefix = []byte(`{"hold":`)

// ParseHold parses a hold line strictly.
func ParseHold(line []byte) (Hold, error) {
	var j struct {
		Hold *struct {
			Chain  *string `json:"chain"`
			Seq    *int64  `json:"seq"`
			Reason string  `json:"reason"`
		} `json:"hold"`
	}
	if err := json.Unmarshal(line, &j); err != nil {
		return Hold{}, fmt.Errorf("hold line: %v", err)
	}
	if j.Hold == nil || j.Hold.Chain == nil || j.Hold.Seq == nil || *j.Hold.Seq < 0 {
		return Hold{}, fmt.Errorf("hold line: needs chain and seq >= 0")
	}
	if err := ValidChainID(*j.Hold.Chain); err != nil {
		return Hold{}, fmt.Errorf("hold line: %v", err)
	}
	return Hold{Chain: *j.Hold.Chain, Seq: *j.Hold.Seq, Reason: j.Hold.Reason}, nil
}
