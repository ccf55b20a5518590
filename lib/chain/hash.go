package chain

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"unsafe"
)

// Hash returns SHA-256(UTF-8(prevHash + "\n" + canonical)), the chain hash
// of a record whose canonical form is canonical (docs/contract.md section 3).
// prevHash is "" for the first record of the chain.
func Hash(prevHash string, canonical []byte) [32]byte {
	h := sha256.New()
	// Copy prevHash and the newline through a stack buffer: converting the
	// string with []byte(prevHash) would allocate.
	var buf [128]byte
	for len(prevHash) >= len(buf) {
		n := copy(buf[:], prevHash)
		h.Write(buf[:n])
		prevHash = prevHash[n:]
	}
	n := copy(buf[:], prevHash)
	buf[n] = '\n'
	h.Write(buf[:n+1])
	h.Write(canonical)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// AppendHexHash appends Hash(prevHash, canonical) to dst as 64 lowercase hex
// characters, the form of recordHash in the database and record lines.
func AppendHexHash(dst []byte, prevHash string, canonical []byte) []byte {
	sum := Hash(prevHash, canonical)
	return hex.AppendEncode(dst, sum[:])
}

// IsHexHash reports whether b is 64 lowercase hex digits, the form of
// recordHash and prevHash (docs/contract.md section 2).
//
// Every line carries two such hashes and every stage checks them, so it
// tests eight bytes at a time: a byte is a digit when adding 0x50 sets its
// top bit and adding 0x46 does not (0x30 <= c <= 0x39), and a letter a-f
// likewise with 0x1f and 0x19. No byte carries into the next, since each is
// below 0x80 (checked first) and no sum reaches 0x100. It is small enough
// to be inlined into the line parser's fast path; keep it so.
func IsHexHash(b []byte) bool {
	if len(b) != 64 {
		return false
	}
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	for i := 0; i < 64; i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		if v&msb != 0 {
			return false
		}
		digit := (v + lsb*0x50) &^ (v + lsb*0x46)
		letter := (v + lsb*0x1f) &^ (v + lsb*0x19)
		if (digit|letter)&msb != msb {
			return false
		}
	}
	return true
}

// IsHexHashString is IsHexHash for a string, without copying it.
func IsHexHashString(s string) bool {
	return IsHexHash(unsafe.Slice(unsafe.StringData(s), len(s)))
}
