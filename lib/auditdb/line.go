package auditdb

import "strconv"

// Row is one row of audit_records.
//
// In a Row passed to a Scan or Follow callback, RecordJSON points into a
// buffer that is reused: it is valid only until the callback returns. The
// strings are ordinary Go strings and may be kept (a kept hash keeps the
// buffer of its chunk's hashes, under a megabyte, from being freed).
type Row struct {
	Seq        int64
	TS         int64 // milliseconds since the epoch
	TenantID   string
	Kind       string
	RecordJSON []byte // the canonical record, exactly the bytes that were hashed
	PrevHash   string
	RecordHash string
}

// AppendLine appends the record line for r (CONTRACTS.md section 2) to dst,
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
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		for i+8 <= len(s) && plain8(s, i) {
			i += 8 // hashes, and most names, are skipped a word at a time
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// plain8 reports whether none of the eight bytes of s from i is '"', '\\'
// or a control byte below 0x20, i.e. none needs escaping. The tests are
// exact about whether some byte of the word matches, which is all that is
// asked here.
func plain8(s string, i int) bool {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	_ = s[i+7]
	v := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
	zero := func(x uint64) uint64 { return (x - lsb) &^ x & msb } // a byte of x is 0
	return zero(v^(lsb*'"'))|zero(v^(lsb*'\\'))|((v-lsb*0x20)&^v&msb) == 0
}
