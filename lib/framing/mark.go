package framing

import "bytes"

// A mark line is a stream control line that audit-read writes for
// audit-verify, in-band, between record lines: the anchor the read started
// from, and the holes a filter made. It is a JSON object whose first key is
// "mark", written exactly as
//
//	{"mark":{"type":"anchor",...}}
//
// audit-verify consumes mark lines and never passes them on. Every other
// stage that meets one (audit-batch, audit-ship, audit-checkpoint seal)
// drops it and never ships it: a mark is not a record. The fields of each
// type are audit-verify's contract (lib/chain, docs/design.md).
var markPrefix = []byte(`{"mark":`)

// IsMark reports whether line (without its newline) is a mark line.
func IsMark(line []byte) bool { return bytes.HasPrefix(line, markPrefix) }
