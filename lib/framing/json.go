package framing

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/elide"
	"github.com/auditpipe/auditpipe/lib/jsonstr"
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
func clip(b []byte) string { return elide.Quote(b, 80) }

// appendString appends s as a JSON string the way JSON.stringify does
// (lib/jsonstr). Invalid UTF-8 is replaced by U+FFFD (one per run of bad
// bytes), so the output is always valid JSON.
func appendString(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\ufffd")
	}
	return jsonstr.AppendString(dst, s)
}

// isHash reports whether s is 64 lowercase hex digits.
func isHash(s string) bool { return chain.IsHexHashString(s) }
