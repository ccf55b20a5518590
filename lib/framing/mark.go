package framing

import "bytes"

// A mark line is a stream control line that audit-read writes for
// audit-verify, in-band, between record lines: the anchor the read started
// from, and the holes a filter made. It is a JSON object whose first key is
// "mark", written exactly as
//
//	{"mark":{"type":"anchor",...}}
//
// or, since issue 15, the chain mark {"mark":{"type":"chain","chain":...}}
// that names the chain the record lines after it belong to (audit-consume
// writes it for audit-verify, and audit-verify writes it downstream before
// each run of a chain's records). audit-verify consumes the marks it reads. Every other
// stage that meets one (audit-batch, audit-ship, audit-checkpoint seal)
// drops it and never ships it: a mark is not a record. The fields of each
// type are audit-verify's contract (lib/chain, docs/design.md).
var markPrefix = []byte(`{"mark":`)

// IsMark reports whether line (without its newline) is a mark line.
func IsMark(line []byte) bool { return bytes.HasPrefix(line, markPrefix) }
