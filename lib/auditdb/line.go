package auditdb

import (
	"strconv"

	"github.com/auditpipe/auditpipe/lib/jsonstr"
)

// Row is one row of audit_records.
//
// In a Row passed to a Scan or Follow callback, RecordJSON points into a
// buffer that is reused: it is valid only until the callback returns. The
// strings are ordinary Go strings and may be kept (a kept hash keeps the
// buffer of its chunk's hashes, 1-2 MB at most, from being freed).
type Row struct {
	Seq        int64
	TS         int64 // milliseconds since the epoch
	TenantID   string
	Kind       string
	RecordJSON []byte // the canonical record, exactly the bytes that were hashed
	PrevHash   string
	RecordHash string
}

// AppendLine appends the record line for r (docs/contract.md section 2) to dst,
// without a newline, and returns the extended buffer:
//
//	{"seq":42,"ts":1764244800123,"tenantId":"acme","kind":"tool_call","record":{…},"prevHash":"…","recordHash":"…"}
//
// RecordJSON is copied verbatim; the strings are escaped as JSON.stringify
// escapes them. AppendLine allocates nothing beyond the growth of dst.
func AppendLine(dst []byte, r *Row) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, r.TS, 10)
	dst = append(dst, `,"tenantId":`...)
	dst = AppendJSONString(dst, r.TenantID)
	dst = append(dst, `,"kind":`...)
	dst = AppendJSONString(dst, r.Kind)
	dst = append(dst, `,"record":`...)
	dst = append(dst, r.RecordJSON...)
	dst = append(dst, `,"prevHash":`...)
	dst = AppendJSONString(dst, r.PrevHash)
	dst = append(dst, `,"recordHash":`...)
	dst = AppendJSONString(dst, r.RecordHash)
	return append(dst, '}')
}

// AppendJSONString appends s as a JSON string literal, escaped the way
// ECMAScript's JSON.stringify escapes it: `"` and `\` escaped, \b \f \n \r \t
// in short form, the other controls below U+0020 as \u00xx with lowercase
// hex, and everything else (U+2028, U+2029, <, >, &, non-ASCII) literally.
// Bytes that are not valid UTF-8 are copied as they are; SQLite TEXT written
// by Declaragent is always valid UTF-8.
func AppendJSONString(dst []byte, s string) []byte {
	return jsonstr.AppendString(dst, s)
}
