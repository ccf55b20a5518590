// Package jsonfield reads the known fields of one JSON object strictly, for
// the parsers of auditpipe's protocol lines (lib/framing's batch header,
// lib/ack's ack line): each known key present exactly once, with the right
// type, and an error that names the key and what is wrong with it. It also
// holds the two small helpers those parsers share: Clip (a bounded, quoted
// excerpt for an error message) and AppendString (a JSON string that is
// always valid JSON).
package jsonfield

import (
	"fmt"
	"github.com/auditpipe/auditpipe/lib/elide"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/jsonstr"
)

// Fields collects the known keys of one JSON object, noting duplicates,
// so that a parser can say "missing", "duplicate" or "wrong type" precisely.
type Fields struct {
	What  string // "batch header", "ack": the prefix of every error
	Names []string
	Vals  [8]*fastjson.Value // Vals[i] is the value of Names[i]; nil when absent
	Dup   string             // the first key seen twice; "" when none
	Buf   []byte             // scratch for the caller
}

// Want names the object (the prefix of every error: "batch header", "ack")
// and the keys to collect, at most 8; field i is Vals[i].
func (f *Fields) Want(what string, names ...string) {
	f.What = what
	f.Names = names
}

// Visit is the callback for fastjson.Object.Visit.
func (f *Fields) Visit(k []byte, v *fastjson.Value) {
	for i, n := range f.Names {
		if string(k) == n {
			if f.Vals[i] != nil && f.Dup == "" {
				f.Dup = n
			}
			f.Vals[i] = v
			return
		}
	}
}

// Check reports a duplicate key, else the first missing one.
func (f *Fields) Check() error {
	if f.Dup != "" {
		return fmt.Errorf("%s: duplicate key %q", f.What, f.Dup)
	}
	for i, n := range f.Names {
		if f.Vals[i] == nil {
			return fmt.Errorf("%s: missing %q", f.What, n)
		}
	}
	return nil
}

// Int returns field i as an int64; it must be a JSON number written as an
// integer (no fraction, no exponent) that fits in 64 bits.
func (f *Fields) Int(i int) (int64, error) {
	v := f.Vals[i]
	if v.Type() != fastjson.TypeNumber {
		return 0, fmt.Errorf("%s: %q must be an integer, got %s", f.What, f.Names[i], v.Type())
	}
	f.Buf = v.MarshalTo(f.Buf[:0])
	n, err := strconv.ParseInt(string(f.Buf), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q must be an integer, got %s", f.What, f.Names[i], Clip(f.Buf))
	}
	return n, nil
}

// Clip quotes at most 80 bytes of b for an error message.
func Clip(b []byte) string { return elide.Quote(b, 80) }

// AppendString appends s as a JSON string the way JSON.stringify does
// (lib/jsonstr). Invalid UTF-8 is replaced by U+FFFD (one per run of bad
// bytes), so the output is always valid JSON.
func AppendString(dst []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\ufffd")
	}
	return jsonstr.AppendString(dst, s)
}

// CheckName reports why s cannot be the name field key of what (an
// exporter, a chain): it must be non-empty valid UTF-8 without control
// characters (U+0000 to U+001F, U+007F), so that it prints on one line.
func CheckName(what, key, s string) error {
	if s == "" {
		return fmt.Errorf("%s: %q is empty", what, key)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: %q %q is not valid UTF-8", what, key, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s: %q %q contains a control character", what, key, s)
		}
	}
	return nil
}
