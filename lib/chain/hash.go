package chain

import (
	"crypto/sha256"
	"encoding/hex"
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
