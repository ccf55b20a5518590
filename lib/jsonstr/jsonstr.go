// Package jsonstr is JSON's string syntax done by hand on the hot path.
// Append writes a string literal byte for byte as ECMAScript's
// JSON.stringify does ('"' and '\' escaped, \b \f \n \r \t short, other
// bytes below 0x20 as \u00xx, every other byte as it is), so the decoded
// string is exactly the input. Scan checks a string token as RFC 8259
// requires and says what it holds; Hex4 and SkipSpace are the two other
// lexical pieces every hand-written JSON reader here needs.
//
// Append has a vector kernel on amd64 with AVX2 (block_amd64.s, chosen at
// run time with golang.org/x/sys/cpu): 32 bytes at a time it stores the
// block to the output as it is and flags its bytes to escape ('"', '\',
// below 0x20) with three compares; for each flagged byte, lowest first,
// it stores the byte's escape where the byte was and the 32 input bytes
// after it right after the escape (later stores overwrite what lands past
// it, as in the word loop). A string's last 32 to 63 bytes go through the
// same loop from a copy padded with spaces. Strings under 32 bytes, other
// platforms, CPUs without AVX2 and builds with the purego tag use the
// word loop alone; the tests run both (and FuzzAppendDifferential
// compares both with a byte-at-a-time reference).
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

// window is the output room the word loop wants at the start of a word. A
// word's stores stay below offset 56 (eight 6-byte escapes, the last one
// followed by an 8-byte store of the rest); offsets masked to 0..63 plus an
// 8-byte store is what lets the compiler prove them all inside the window.
const window = 64 + 8

// Append appends b as a JSON string literal to dst.
//
// It works a word at a time and copies ahead: each 8-byte word is stored
// to the output unconditionally, and an exact mask flags the bytes of the
// word that need escaping. Each flagged byte is then escaped from the word
// still in a register: its escape is stored where it was, and the rest of
// the word is stored again right after the escape (the bytes that land
// past the word are overwritten by the stores that follow). No
// byte-by-byte loop, no copy call per run, and no reload of the input per
// escape. The last bytes, fewer than eight, go through the same loop
// padded to a word with spaces, whose output is then dropped. (Audit-read
// writes every row's strings with it, and every HTTP sink wraps each whole
// record line in a JSON string.) Where there is a vector kernel (see the
// package doc), it does the string first, from 32 bytes on, and the word
// loop what it leaves: under 32 bytes, or what did not fit its room.
func Append(dst, b []byte) []byte {
	j := len(dst)
	out := slices.Grow(dst, room(len(b)))
	out = out[:cap(out)]
	out[j] = '"'
	j++
	i := 0
	for len(b)-i >= 8 {
		if len(b)-i >= tailMin && useBlocks {
			i, j = appendBlocks(out, j, b, i)
		}
		i, j = appendWords(out, j, b, i)
		if len(b)-i < 8 {
			break
		}
		// Out of room: enough for the rest if it has an escape every 8
		// bytes, the loop coming back here if it has more.
		out = slices.Grow(out[:j], room(len(b)-i))
		out = out[:cap(out)]
	}
	if n := len(b) - i; n > 0 {
		// The last n < 8 bytes, as a word padded with spaces (which need
		// no escape), the 8-n spaces then dropped from the output.
		if len(out)-j < window {
			out = slices.Grow(out[:j], window)
			out = out[:cap(out)]
		}
		pad := [8]byte{' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}
		copy(pad[:], b[i:])
		_, j = appendWords(out, j, pad[:], 0)
		j -= 8 - n
	}
	// In room: the last word, if any, had window bytes and used 48 at
	// most; the kernel leaves 32 bytes after what it wrote.
	out[j] = '"'
	return out[:j+1]
}

// tailMin is the least input the vector kernel takes: shorter strings
// are as fast or faster in the word loop.
const tailMin = 32

// room is the output room to ask for n bytes of input: enough if one byte
// in eight needs an escape, and the room the loops want at their start.
// The vector kernel wants 224 bytes at the start of a 32-byte block (32
// escapes of six bytes, the last one followed by a 32-byte store), and
// 6r+32 for its tail of r < 64 bytes.
func room(n int) int {
	switch {
	case n < tailMin || !useBlocks:
		return n + n/8 + window
	case n < 64:
		return 6*n + 32
	}
	return n + n/8 + 5*64 + 32
}

// appendWords escapes the 8-byte words of b from i on into out from j, as
// long as b has a whole word left and out has window bytes, and returns
// where it stopped in each. It is apart from Append so that the loop holds
// no call (growing the output), which would cost it registers.
func appendWords(out []byte, j int, b []byte, i int) (int, int) {
	for ; i <= len(b)-8 && j <= len(out)-window; i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		w := (*[window]byte)(out[j:])
		binary.LittleEndian.PutUint64(w[:], v)
		d := 0 // bytes the escapes of this word have added so far
		for m := special(v); m != 0; m &= m - 1 {
			t := bits.TrailingZeros64(m) // the top bit of the special byte
			r := v >> (uint(t) & 56)     // the special byte, then the rest of the word
			e := escapes[byte(r)]
			// Where the special byte was stored. The masks (here and
			// below) change nothing, offsets stay below 48, but they let
			// the compiler drop the bounds checks.
			p := (d + t>>3) & 63
			binary.LittleEndian.PutUint64(w[p:], e)
			l := int(e >> 56)
			// The rest right after the escape, rotated rather than
			// shifted: a top byte known to be zero would make the
			// compiler split the store into four.
			binary.LittleEndian.PutUint64(w[(p+l)&63:], bits.RotateLeft64(r, -8))
			d += l - 1
		}
		j += 8 + d
	}
	return i, j
}

// special flags (0x80) the bytes of v that need escaping: '"', '\' and
// those below 0x20. It must flag no other byte, as every flagged one gets
// escaped, so the tests work on the low 7 bits of each byte, where adding
// 0x7f or 0x60 carries into the byte's top bit but never out of the byte.
func special(v uint64) uint64 {
	const low7 = lsb * 0x7f
	a := v & low7
	// A byte's top bit stays clear where its low 7 bits are '"', '\', or
	// below 0x20 (x+0x7f carries into it unless x is 0, x+0x60 unless x is
	// below 0x20); ORing v sets it back for the bytes of 0x80 and up.
	keep := ((a ^ lsb*'"') + low7) & ((a ^ lsb*'\\') + low7) & (a + lsb*0x60)
	return msb &^ (keep | v)
}

// escapes[c] is the escape of a special byte c as a little-endian word:
// its bytes (\" \\ \b \f \n \r \t, or \u00xx with lowercase hex), and its
// length in the top byte. Storing the whole word is fine: the rest of the
// input word is stored over what follows the escape.
var escapes = func() (t [256]uint64) {
	const hex = "0123456789abcdef"
	for c := range 0x20 {
		t[c] = 6<<56 | uint64(hex[c&15])<<40 | uint64(hex[c>>4])<<32 | '0'<<24 | '0'<<16 | 'u'<<8 | '\\'
	}
	short := map[byte]byte{'"': '"', '\\': '\\', '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't'}
	for c, e := range short {
		t[c] = 2<<56 | uint64(e)<<8 | '\\'
	}
	return t
}()
