package chain

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// BenchmarkHashCompare is the per-record cost of comparing a computed sum
// with the line's recordHash, and of the window's copy of it: before, the
// recordHash was decoded from hex for the comparison and again for the
// window; now the sum is encoded and compared as text, and the window takes
// the sum.
func BenchmarkHashCompare(b *testing.B) {
	sum := sha256.Sum256([]byte("x"))
	rh := []byte(hex.EncodeToString(sum[:]))
	b.Run("decode", func(b *testing.B) {
		var want, win [32]byte
		n := 0
		for i := 0; i < b.N; i++ {
			hex.Decode(want[:], rh)
			if sum == want {
				n++
			}
			hex.Decode(win[:], rh)
		}
		if n != b.N || win != sum {
			b.Fatal("mismatch")
		}
	})
	b.Run("encode", func(b *testing.B) {
		var hs [64]byte
		var win [32]byte
		n := 0
		for i := 0; i < b.N; i++ {
			hex.Encode(hs[:], sum[:])
			if string(hs[:]) == string(rh) {
				n++
			}
			win = sum
		}
		if n != b.N || win != sum {
			b.Fatal("mismatch")
		}
	})
}
