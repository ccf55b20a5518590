package jsonstr

import "testing"

func TestScan(t *testing.T) {
	tests := []struct {
		in              string
		end             int
		escaped, astral bool
		p               Problem
	}{
		{`"" x`, 2, false, false, OK},
		{`"plain words longer than eight"`, 31, false, false, OK},
		{`"a\"b" `, 6, true, false, OK},
		{`"\u00e9\/"`, 10, true, false, OK},
		{`"é 日 😀"`, 13, false, true, OK},
		{`"abc`, 4, false, false, Unterminated},
		{`"abc\`, 4, false, false, UnterminatedEscape},
		{`"ab\x"`, 3, false, false, BadEscape},
		{`"ab\u12g4"`, 3, false, false, BadUnicodeEscape},
		{`"ab\u12"`, 3, false, false, BadUnicodeEscape},
		{"\"ab\x01\"", 3, false, false, ControlByte},
		{"\"ab\xff\"", 3, false, false, BadUTF8},
		{"\"ab\xed\xa0\x80\"", 3, false, false, BadUTF8}, // a surrogate in UTF-8
	}
	for _, tt := range tests {
		end, esc, astral, p := Scan([]byte(tt.in), 0)
		if end != tt.end || esc != tt.escaped || astral != tt.astral || p != tt.p {
			t.Errorf("Scan(%q) = %d, %v, %v, %d; want %d, %v, %v, %d", tt.in, end, esc, astral, p, tt.end, tt.escaped, tt.astral, tt.p)
		}
	}
}

func TestHex4AndSkipSpace(t *testing.T) {
	for in, want := range map[string]int{"00e9": 0xe9, "FFfF": 0xffff, "12g4": -1, "-123": -1} {
		if got := Hex4([]byte(in)); got != want {
			t.Errorf("Hex4(%q) = %d, want %d", in, got, want)
		}
	}
	for in, want := range map[string]int{"": 0, "x": 0, " \t\r\nx": 4, "   ": 3, "\v": 0} {
		if got := SkipSpace([]byte(in), 0); got != want {
			t.Errorf("SkipSpace(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct {
		in, plain, wtf8 string
		astral          bool
	}{
		{`a\"b\\c\/d\b\f\n\r\t`, "a\"b\\c/d\b\f\n\r\t", "a\"b\\c/d\b\f\n\r\t", false},
		{`\u00e9\u65E5`, "é日", "é日", false},
		{`\ud83d\ude00`, "😀", "😀", true},
		{`😀 \n`, "😀 \n", "😀 \n", true},
		{`\ud83d`, "\ufffd", "\xed\xa0\xbd", false},                         // lone high
		{`\ude00x`, "\ufffdx", "\xed\xb8\x80x", false},                      // lone low
		{`\ud83d\u0041`, "\ufffdA", "\xed\xa0\xbdA", false},                 // high, then no low
		{`\ude00\ud83d`, "\ufffd\ufffd", "\xed\xb8\x80\xed\xa0\xbd", false}, // the wrong order
	}
	for _, tt := range tests {
		if got := string(Unescape([]byte("x"), []byte(tt.in))); got != "x"+tt.plain {
			t.Errorf("Unescape(%s) = %q, want %q", tt.in, got[1:], tt.plain)
		}
		got, astral := UnescapeWTF8(nil, []byte(tt.in))
		if string(got) != tt.wtf8 || astral != tt.astral {
			t.Errorf("UnescapeWTF8(%s) = %q, %v; want %q, %v", tt.in, got, astral, tt.wtf8, tt.astral)
		}
	}
}
