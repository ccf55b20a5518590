//go:build !linux

package jsonstr

import "testing"

// guard is memory; only on Linux does a guard page follow it.
type guard struct{ mem []byte }

func newGuard(t testing.TB, size int) *guard { return &guard{make([]byte, size)} }

func (g *guard) last(n int) []byte { return g.mem[len(g.mem)-n:] }
