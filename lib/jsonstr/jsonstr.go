// Package jsonstr writes JSON string literals the way ECMAScript's
// JSON.stringify writes them: '"' and '\' escaped, \b \f \n \r \t in short
// form, the other bytes below 0x20 as \u00xx (lowercase hex), and every
// other byte as it is (non-ASCII, U+2028, '<'; invalid UTF-8 too, which the
// stages reject before it gets here), so the decoded string is byte for
// byte the input.
//
// It is on the hot path twice: audit-read writes every row's strings with
// it, and every HTTP sink wraps each whole record line in a JSON string (a
// record line has a '"' every few bytes). So it works a word at a time and
// copies ahead: each 8-byte word is stored to the output unconditionally,
// and the output position advances past the bytes that need no escaping
// (all eight, or up to the first special one, which is then escaped over
// the rest of the word). No byte-by-byte loop and no copy call per run.
package jsonstr

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"unsafe"
)

// AppendString appends s as a JSON string literal to dst.
func AppendString(dst []byte, s string) []byte {
	return Append(dst, unsafe.Slice(unsafe.StringData(s), len(s)))
}

const lsb, msb = 0x0101010101010101, 0x8080808080808080

// Append appends b as a JSON string literal to dst.
func Append(dst, b []byte) []byte {
	j := len(dst)
	out := slices.Grow(dst, len(b)+len(b)/8+16)
	out = out[:cap(out)]
	out[j] = '"'
	j++
	i := 0
	for i+8 <= len(b) {
		if len(out)-j < 16 { // room for this word and one escape
			out = slices.Grow(out[:j], len(b)-i+len(b)/8+16)
			out = out[:cap(out)]
		}
		v := binary.LittleEndian.Uint64(b[i:])
		binary.LittleEndian.PutUint64(out[j:], v)
		// Flag '"', '\' and bytes below 0x20. The lowest flagged byte is
		// always a true one (a false flag needs a borrow from a true one
		// below it), which is all that is used.
		m := zero(v^(lsb*'"')) | zero(v^(lsb*'\\')) | ((v - lsb*0x20) &^ v & msb)
		if m == 0 {
			i += 8
			j += 8
			continue
		}
		k := bits.TrailingZeros64(m) >> 3
		i += k
		j = escapeAt(out, j+k, b[i])
		i++
	}
	for ; i < len(b); i++ {
		if len(out)-j < 8 {
			out = slices.Grow(out[:j], 8+len(b)-i)
			out = out[:cap(out)]
		}
		if c := b[i]; escape[c] == 0 {
			out[j] = c
			j++
		} else {
			j = escapeAt(out, j, c)
		}
	}
	if len(out)-j < 1 {
		out = slices.Grow(out[:j], 1)
		out = out[:cap(out)]
	}
	out[j] = '"'
	return out[:j+1]
}

// zero flags (0x80) the lowest zero byte of x, and maybe bytes above it.
func zero(x uint64) uint64 { return (x - lsb) &^ x & msb }

// escapeAt writes the escape of c at out[j:] (room for 6 bytes is there)
// and returns the position after it.
func escapeAt(out []byte, j int, c byte) int {
	e := escape[c]
	if e != 'u' {
		out[j], out[j+1] = '\\', e
		return j + 2
	}
	const hex = "0123456789abcdef"
	_ = out[j+5]
	out[j], out[j+1], out[j+2], out[j+3], out[j+4], out[j+5] = '\\', 'u', '0', '0', hex[c>>4], hex[c&15]
	return j + 6
}

// escape[c] is 0 for a byte written as it is, 'u' for \u00xx, and the
// letter of the short escape otherwise.
var escape = func() (t [256]byte) {
	for c := range 0x20 {
		t[c] = 'u'
	}
	t['\b'], t['\f'], t['\n'], t['\r'], t['\t'] = 'b', 'f', 'n', 'r', 't'
	t['"'], t['\\'] = '"', '\\'
	return t
}()
