package elide

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTo(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"", 5, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"abé", 3, "ab…"}, // é is two bytes: never cut inside it
		{"ab😀", 3, "ab…"},
		{"😀😀", 4, "😀…"},
		{"😀", 0, "…"},
		{strings.Repeat("x", 100), 80, strings.Repeat("x", 80) + "…"},
	}
	for _, tt := range tests {
		if got := To(tt.in, tt.n); got != tt.want {
			t.Errorf("To(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if got := To([]byte(tt.in), tt.n); got != tt.want {
			t.Errorf("To([]byte(%q), %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if got := To(tt.in, tt.n); utf8.ValidString(tt.in) && !utf8.ValidString(got) {
			t.Errorf("To(%q, %d) = %q, not valid UTF-8", tt.in, tt.n, got)
		}
	}
}

func TestQuoteAndHash(t *testing.T) {
	if got, want := Quote("a\"bcdef", 4), `"a\"bc…"`; got != want {
		t.Errorf("Quote = %s, want %s", got, want)
	}
	h := "8a3b81c0c4e3a4fccd992eb5b67ffdb7500e72a2ed95654b92b097d1919584b0"
	if got, want := Hash(h), "8a3b81c0c4e3…"; got != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}
	if got := Hash("abc"); got != "abc" {
		t.Errorf("Hash(abc) = %s", got)
	}
}
