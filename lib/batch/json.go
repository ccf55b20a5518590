package batch

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// fields collects the known keys of one JSON object, noting duplicates,
// so that a parser can say "missing", "duplicate" or "wrong type" precisely.
type fields struct {
	what  string // "batch header", "ack": the prefix of every error
	names []string
	vals  [8]*fastjson.Value
	dup   string
	buf   []byte
}

func (f *fields) want(what string, names ...string) {
	f.what = what
	f.names = names
}

func (f *fields) visit(k []byte, v *fastjson.Value) {
	for i, n := range f.names {
		if string(k) == n {
			if f.vals[i] != nil && f.dup == "" {
				f.dup = n
			}
			f.vals[i] = v
			return
		}
	}
}

// check reports a duplicate key, else the first missing one.
func (f *fields) check() error {
	if f.dup != "" {
		return fmt.Errorf("%s: duplicate key %q", f.what, f.dup)
	}
	for i, n := range f.names {
		if f.vals[i] == nil {
			return fmt.Errorf("%s: missing %q", f.what, n)
		}
	}
	return nil
}

// int returns field i as an int64; it must be a JSON number written as an
// integer (no fraction, no exponent) that fits in 64 bits.
func (f *fields) int(i int) (int64, error) {
	v := f.vals[i]
	if v.Type() != fastjson.TypeNumber {
		return 0, fmt.Errorf("%s: %q must be an integer, got %s", f.what, f.names[i], v.Type())
	}
	f.buf = v.MarshalTo(f.buf[:0])
	n, err := strconv.ParseInt(string(f.buf), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q must be an integer, got %s", f.what, f.names[i], clip(f.buf))
	}
	return n, nil
}

// clip quotes at most 80 bytes of b for an error message.
func clip(b []byte) string {
	if len(b) > 80 {
		return strconv.Quote(string(b[:80])) + "…"
	}
	return strconv.Quote(string(b))
}

// appendString appends s as a JSON string the way JSON.stringify does:
// '"' and '\' escaped, \b \f \n \r \t in short form, other controls as
// \u00xx, everything else literal. Invalid UTF-8 is replaced by U+FFFD, so
// the output is always valid JSON.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, "\ufffd"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
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
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// isHash reports whether s is 64 lowercase hex digits.
func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
