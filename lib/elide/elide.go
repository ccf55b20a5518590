// Package elide shortens a value a message quotes: at most n bytes of it,
// cut at a character boundary and marked with "…", so that a message
// about a bad line stays one readable line however long the line was.
package elide

import (
	"strconv"
	"unicode/utf8"
)

// To returns s if it is at most n bytes long, else its first n bytes
// (fewer if n falls inside a UTF-8 sequence) followed by "…".
func To[T ~string | ~[]byte](s T, n int) string {
	if len(s) <= n {
		return string(s)
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return string(s[:n]) + "…"
}

// Quote is strconv.Quote(To(s, n)): the shortened value as a Go string
// literal, for a message that must show where it starts and ends.
func Quote[T ~string | ~[]byte](s T, n int) string {
	return strconv.Quote(To(s, n))
}

// Hash shortens a 64-hex-digit hash to its first 12 digits and "…", the
// form messages and reports show.
func Hash[T ~string | ~[]byte](h T) string {
	return To(h, 12)
}
