//go:build amd64 && !purego

package jsonstr

import "golang.org/x/sys/cpu"

// useBlocks says whether Append runs the vector kernel (AVX2) before the
// word loop. Tests turn it off to check the word loop alone.
var useBlocks = cpu.X86.HasAVX2

// appendBlocks escapes b from i on into out from j, 32-byte blocks while
// b has 64 bytes left (a block and the 32 after it, which its stores of
// the rest of a block read) and out has 224 (32 escapes of six bytes, the
// last one followed by a 32-byte store), then the last 32 to 63 bytes if
// out has 6r+32 for them, and returns where it stopped in each: out[j:nj]
// is the escape of b[i:ni] (no quotes). It is in block_amd64.s.
//
//go:noescape
func appendBlocks(out []byte, j int, b []byte, i int) (ni, nj int)
