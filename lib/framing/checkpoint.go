package framing

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/valyala/fastjson"
)

// A checkpoint line carries one signed checkpoint note (issue 16 item 1)
// in band, between record lines: audit-checkpoint seal --emit-checkpoints
// writes it right after the record that completes the checkpoint (a note
// signed by the timer, or cosigned by witnesses later, after the record
// that was last when it was made), exactly as the line seal appends to its
// --out file:
//
//	{"checkpoint":"<the note, signatures and cosignatures included>"}
//
// Unlike a mark it is carried: audit-batch puts it in the batch it falls
// in (counted in the header's count like a record line), audit-ship gives
// it to the sink as a checkpoint event of its own kind, and the batch's ack
// covers only its records (a batch of checkpoint lines alone has no ack).
// A stream without seal --emit-checkpoints has no such line.
var checkpointPrefix = []byte(`{"checkpoint":`)

// IsCheckpoint reports whether line (without its newline) is a checkpoint
// line.
func IsCheckpoint(line []byte) bool { return bytes.HasPrefix(line, checkpointPrefix) }

// ParseCheckpoint returns the note of a checkpoint line and the tree size
// its body claims (the second line of the note); the signatures are not
// checked here (audit-checkpoint does). A nil p is allowed.
func ParseCheckpoint(p *fastjson.Parser, line []byte) (note []byte, size int64, err error) {
	if p == nil {
		p = new(fastjson.Parser)
	}
	v, err := p.ParseBytes(line)
	if err != nil {
		return nil, 0, fmt.Errorf("checkpoint line: invalid JSON: %v", err)
	}
	nv := v.Get("checkpoint")
	if nv == nil || nv.Type() != fastjson.TypeString {
		return nil, 0, fmt.Errorf("checkpoint line: \"checkpoint\" is not a string")
	}
	note, _ = nv.StringBytes()
	note = append([]byte(nil), note...)
	lines := bytes.SplitN(note, []byte("\n"), 3)
	if len(lines) < 3 {
		return nil, 0, fmt.Errorf("checkpoint line: the note has no size line (want origin, size, root hash)")
	}
	size, err = strconv.ParseInt(string(lines[1]), 10, 64)
	if err != nil || size < 0 {
		return nil, 0, fmt.Errorf("checkpoint line: the note's size line %q is not a tree size", lines[1])
	}
	return note, size, nil
}
