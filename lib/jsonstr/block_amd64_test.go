//go:build amd64 && !purego

package jsonstr

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// The kernel alone, given every output length up to what its input could
// need, with the output ending at a guard page: it must stop before
// writing past the end, and what it wrote must be the escape of what it
// read. With the room Append gives it (for an escape every 8 bytes), it
// must do all but fewer than tailMin bytes of a string with fewer escapes.
func TestAppendBlocksRoom(t *testing.T) {
	if !useBlocks {
		t.Skip("no vector kernel here")
	}
	r := rand.New(rand.NewPCG(17, 3))
	in, out := newGuard(t, 1<<12), newGuard(t, 1<<12)
	for _, n := range []int{32, 33, 63, 64, 65, 95, 96, 97, 130, 200} {
		for _, kind := range []string{"controls", "quotes", "mixed", "sparse", "plain"} {
			s := make([]byte, n)
			for i := range s {
				switch kind {
				case "controls": // all \u00xx, the longest escape
					s[i] = "\x00\x01\x02\x07\x0b\x0e\x10\x1f"[r.IntN(8)]
				case "quotes":
					s[i] = '"'
				case "mixed":
					s[i] = "a\"\\\x00\n"[r.IntN(5)]
				case "sparse": // an escape every 9 bytes: less than the n/8 room gives
					s[i] = byte('a' + r.IntN(26))
					if i%9 == 8 {
						s[i] = byte(r.IntN(0x20))
					}
				default:
					s[i] = byte('a' + r.IntN(26))
				}
			}
			b := in.last(n)
			copy(b, s)
			for size := 0; size <= room(n); size++ {
				o := out.last(size)
				ni, nj := appendBlocks(o, 0, b, 0)
				want := ref(nil, s[:ni])
				want = want[1 : len(want)-1]
				if ni < 0 || ni > n || !bytes.Equal(o[:nj], want) {
					t.Fatalf("%s, n %d, room %d: read %d, wrote %q, want %q", kind, n, size, ni, o[:nj], want)
				}
				if (kind == "plain" || kind == "sparse") && size >= room(n) && n-ni >= tailMin {
					t.Fatalf("%s, n %d, room %d: stopped at %d", kind, n, size, ni)
				}
			}
		}
	}
}
