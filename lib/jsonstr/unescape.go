package jsonstr

import "unicode/utf8"

// Unescape appends to dst the decoded form of s, the body (between the
// quotes) of a string token Scan accepted. A \u escape of a surrogate that
// does not pair with its neighbour becomes U+FFFD, so the result is valid
// UTF-8: for labels and messages, never for hashing.
func Unescape(dst, s []byte) []byte {
	dst, _ = unescape(dst, s, false)
	return dst
}

// UnescapeWTF8 is Unescape for the canonical form: a lone surrogate is kept
// as the 3-byte encoding of its code unit (generalised UTF-8, "WTF-8"), so
// the result stands for the exact UTF-16 string of JavaScript. A valid pair
// becomes the 4-byte UTF-8 of its code point. astral reports a code point
// above U+FFFF in the result.
func UnescapeWTF8(dst, s []byte) (out []byte, astral bool) {
	return unescape(dst, s, true)
}

func unescape(dst, s []byte, wtf8 bool) (out []byte, astral bool) {
	for i := 0; i < len(s); {
		ch := s[i]
		if ch != '\\' {
			// Copy the run up to the next backslash (validated UTF-8).
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			for _, b := range s[i:j] {
				if b >= 0xF0 {
					astral = true
					break
				}
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		switch s[i+1] {
		case 'u':
			u := rune(Hex4(s[i+2 : i+6]))
			i += 6
			if 0xD800 <= u && u < 0xDC00 && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
				if lo := rune(Hex4(s[i+2 : i+6])); 0xDC00 <= lo && lo < 0xE000 {
					dst = utf8.AppendRune(dst, 0x10000+(u-0xD800)<<10+(lo-0xDC00))
					astral = true
					i += 6
					continue
				}
			}
			if wtf8 && 0xD800 <= u && u < 0xE000 {
				// A lone surrogate in generalised UTF-8 (utf8.AppendRune
				// writes U+FFFD, which is what Unescape wants).
				dst = append(dst, 0xED, byte(0x80|(u>>6)&0x3F), byte(0x80|u&0x3F))
			} else {
				dst = utf8.AppendRune(dst, u)
			}
			continue
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst, astral
}
