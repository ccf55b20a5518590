package jsonstr

import (
	"encoding/binary"
	"unicode/utf8"
)

// Problem is what Scan found wrong with a string token.
type Problem uint8

const (
	OK                 Problem = iota
	Unterminated               // the input ends before the closing quote
	UnterminatedEscape         // the input ends right after a backslash
	BadEscape                  // a backslash before none of " \ / b f n r t u
	BadUnicodeEscape           // \u not followed by four hex digits
	ControlByte                // a byte below 0x20, which must be escaped
	BadUTF8                    // invalid UTF-8
)

// Scan checks the JSON string token whose opening quote is b[i], as RFC
// 8259 has it: no control byte, only JSON's escapes, valid UTF-8. It
// returns the index just after the closing quote; escaped, whether the
// token holds a backslash escape; astral, whether it holds a literal (not
// escaped) character above U+FFFF. On a problem, end is the index of the
// byte at fault (the backslash of a bad escape; len(b) when the input ends
// first) and p says what it is.
func Scan(b []byte, i int) (end int, escaped, astral bool, p Problem) {
	i++
	for {
		// Eight bytes at a time while none is '"', '\\', a control byte
		// or non-ASCII (which is checked to be valid UTF-8 below).
		for i+8 <= len(b) {
			if !PlainWord(binary.LittleEndian.Uint64(b[i:])) {
				break
			}
			i += 8
		}
		for i < len(b) && !scanStop[b[i]] {
			i++
		}
		if i >= len(b) {
			return len(b), false, false, Unterminated
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, astral, OK
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return i, false, false, UnterminatedEscape
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || Hex4(b[i+2:i+6]) < 0 {
					return i, false, false, BadUnicodeEscape
				}
				i += 6
			default:
				return i, false, false, BadEscape
			}
		case c >= 0xc2 && c <= 0xdf && i+1 < len(b) && b[i+1]&0xc0 == 0x80:
			i += 2 // a two-byte sequence (é, ü, …)
		case c >= 0xe1 && c <= 0xec && i+2 < len(b) && b[i+1]&0xc0 == 0x80 && b[i+2]&0xc0 == 0x80:
			i += 3 // a three-byte sequence without the overlong (e0) or surrogate (ed) cases
		case c >= 0x80:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return i, false, false, BadUTF8
			}
			astral = astral || n == 4
			i += n
		default:
			return i, false, false, ControlByte
		}
	}
}

// scanStop marks the bytes that end the fast scan of a string body.
var scanStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	return t
}()

// PlainWord reports whether the eight bytes of v (a little-endian load)
// are all printable ASCII other than '"' and '\\': a run a string body
// holds as it is. It may say false for a plain word (a borrow between
// bytes), never true for one that is not, so a caller checks byte by byte
// where it says false.
func PlainWord(v uint64) bool {
	// ((v - 0x20…) | v) & msb flags a byte below 0x20 (it borrows) or from
	// 0x80 up; a borrow into the next byte only adds false positives.
	return hasZero(v^(lsb*'"'))|hasZero(v^(lsb*'\\'))|(((v-lsb*0x20)|v)&msb) == 0
}

// hasZero is non-zero iff some byte of x is zero.
func hasZero(x uint64) uint64 { return (x - lsb) & ^x & msb }

// Hex4 returns the value of the four hex digits (either case) of a \u
// escape, b[:4], or -1 if they are not four hex digits.
func Hex4(b []byte) int {
	v := 0
	for _, ch := range b[:4] {
		var d byte
		switch {
		case '0' <= ch && ch <= '9':
			d = ch - '0'
		case 'a' <= ch && ch <= 'f':
			d = ch - 'a' + 10
		case 'A' <= ch && ch <= 'F':
			d = ch - 'A' + 10
		default:
			return -1
		}
		v = v<<4 | int(d)
	}
	return v
}

// SkipSpace returns the index of the first byte at or after i in b that is
// not JSON whitespace (space, tab, newline, carriage return); len(b) if
// there is none.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
