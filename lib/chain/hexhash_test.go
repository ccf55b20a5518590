package chain

import (
	"bytes"
	"testing"
)

// isHexHashRef is the byte-at-a-time definition IsHexHash must match.
func isHexHashRef(b []byte) bool {
	if len(b) != 64 {
		return false
	}
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Every byte value at every position of an otherwise valid hash, so each
// lane of the word-at-a-time test meets each byte, and its neighbours in
// the same word are both digits and letters.
func TestIsHexHashEveryByteEveryPosition(t *testing.T) {
	for _, base := range []string{
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a",
	} {
		if !IsHexHash([]byte(base)) {
			t.Fatalf("IsHexHash(%q) = false", base)
		}
		for pos := range 64 {
			for c := range 256 {
				b := []byte(base)
				b[pos] = byte(c)
				if got, want := IsHexHash(b), isHexHashRef(b); got != want {
					t.Fatalf("byte %#02x at %d of %q: IsHexHash = %v, want %v", c, pos, base, got, want)
				}
			}
		}
	}
	for _, n := range []int{0, 1, 63, 65, 128} {
		b := bytes.Repeat([]byte("a"), n)
		if IsHexHash(b) {
			t.Errorf("IsHexHash of %d bytes = true", n)
		}
	}
}

func FuzzIsHexHash(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
	f.Add([]byte("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Also the input cut or padded to 64 bytes, the only length that
		// reaches the word loop.
		fit := append(b[:min(len(b), 64):min(len(b), 64)], bytes.Repeat([]byte("0"), 64-min(len(b), 64))...)
		for _, x := range [][]byte{b, fit} {
			if got, want := IsHexHash(x), isHexHashRef(x); got != want {
				t.Fatalf("IsHexHash(%q) = %v, want %v", x, got, want)
			}
			if got := IsHexHashString(string(x)); got != IsHexHash(x) {
				t.Fatalf("IsHexHashString(%q) = %v, not as for the bytes", x, got)
			}
		}
	})
}

// BenchmarkIsHexHash compares the word-at-a-time test with the
// byte-at-a-time definition, in the same run.
func BenchmarkIsHexHash(b *testing.B) {
	h := []byte("8a3b81c0c4e3a4fccd992eb5b67ffdb7500e72a2ed95654b92b097d1919584b0")
	for _, c := range []struct {
		name string
		f    func([]byte) bool
	}{{"words", IsHexHash}, {"bytes-baseline", isHexHashRef}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if !c.f(h) {
					b.Fatal("not a hash")
				}
			}
		})
	}
}
