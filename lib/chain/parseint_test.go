package chain

import (
	"strconv"
	"testing"
)

// parseIntRef is parseInt as it was before the overflow test was skipped
// for short numbers: one division per digit. The new one must agree with
// it on every input.
func parseIntRef(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		n = -n
	}
	return n, true
}

var parseIntCases = []string{
	"", "-", "0", "-0", "1", "-1", "00", "007", "12a", "1.5", "1e3", " 1", "+1",
	"123456789012345678", "-123456789012345678", "999999999999999999", "-999999999999999999",
	"1234567890123456789", "9223372036854775807", "-9223372036854775807",
	"9223372036854775808", "-9223372036854775808", "9999999999999999999",
	"12345678901234567890", "1764244800389", "1844674407370955161x",
}

func TestParseIntAgreesWithReference(t *testing.T) {
	for _, s := range parseIntCases {
		n, ok := parseInt([]byte(s))
		rn, rok := parseIntRef([]byte(s))
		if n != rn || ok != rok {
			t.Errorf("parseInt(%q) = %d, %v; the reference says %d, %v", s, n, ok, rn, rok)
		}
		// And both are strconv's answer for an optionally signed run of
		// ASCII digits, less -2^63 (never accepted: it was never needed).
		sn, err := strconv.ParseInt(s, 10, 64)
		want := err == nil && s != "" && s[0] != '+' && s != "-9223372036854775808"
		if ok != want || (ok && n != sn) {
			t.Errorf("parseInt(%q) = %d, %v; strconv says %d, %v", s, n, ok, sn, err)
		}
	}
}

func FuzzParseInt(f *testing.F) {
	for _, s := range parseIntCases {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok := parseInt(b)
		rn, rok := parseIntRef(b)
		if n != rn || ok != rok {
			t.Fatalf("parseInt(%q) = %d, %v; the reference says %d, %v", b, n, ok, rn, rok)
		}
	})
}

// BenchmarkParseInt: a line's ts (13 digits) and seq (6), old and new.
func BenchmarkParseInt(b *testing.B) {
	ts, seq := []byte("1764244800389"), []byte("123456")
	for _, f := range []struct {
		name string
		fn   func([]byte) (int64, bool)
	}{{"reference", parseIntRef}, {"new", parseInt}} {
		b.Run(f.name, func(b *testing.B) {
			var sum int64
			for i := 0; i < b.N; i++ {
				x, _ := f.fn(ts)
				y, _ := f.fn(seq)
				sum += x + y
			}
			_ = sum
		})
	}
}
