package jsonstr

import (
	"syscall"
	"testing"
)

// guard is memory followed by an unreadable, unwritable page, so that a
// read or write past it faults instead of passing unseen (the vector
// kernel loads and stores whole blocks).
type guard struct{ mem []byte }

func newGuard(t testing.TB, size int) *guard {
	page := syscall.Getpagesize()
	size = (size + page - 1) / page * page
	mem, err := syscall.Mmap(-1, 0, size+page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	if err := syscall.Mprotect(mem[size:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	return &guard{mem[:size:size]}
}

// last returns its last n bytes (n up to the size it was made with), with
// no capacity after them.
func (g *guard) last(n int) []byte { return g.mem[len(g.mem)-n:] }
