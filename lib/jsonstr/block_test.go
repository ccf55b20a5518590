package jsonstr

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
)

// paths runs f once for each way Append can run here: with the vector
// kernel (where the platform has one: amd64 with AVX2, not built with
// the purego tag) and with the word loop alone, which is what every other
// platform runs.
func paths(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	saved := useBlocks
	defer func() { useBlocks = saved }()
	names := map[bool]string{true: "blocks", false: "words"}
	for _, on := range []bool{true, false} {
		if on && !saved {
			continue
		}
		useBlocks = on
		t.Run(names[on], f)
	}
}

// appendGuarded escapes s with Append, s and dst both ending right before
// a guard page (see guard): s sits at the end of in and dst at the end of
// out, with spare capacity after its bytes up to the page.
func appendGuarded(t testing.TB, in, out *guard, prefix, s []byte, spare int) []byte {
	b := in.last(len(s))
	copy(b, s)
	dst := append(out.last(len(prefix) + spare)[:0], prefix...)
	got := Append(dst, b)
	if !bytes.Equal(got[:len(prefix)], prefix) {
		t.Fatalf("the prefix changed: %q", got[:len(prefix)])
	}
	if !bytes.Equal(b, s) {
		t.Fatalf("the input changed")
	}
	return got
}

// Differential test over generated inputs: every length 0..320, specials
// of every kind at random densities, input ending at a guard page (so
// every alignment of its end and start relative to it), dst empty,
// with content, short of room or with plenty.
func TestAppendDifferential(t *testing.T) {
	paths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(17, 2))
		in, out := newGuard(t, 1<<16), newGuard(t, 1<<16)
		alphabet := []byte("\"\\\x00\x01\x08\x09\x0a\x0c\x0d\x1f\x20\x21\x5b\x5d\x7f\x80\xbf\xc3\xe2\xff")
		for n := 0; n <= 320; n++ {
			for _, density := range []int{0, 1, 3, 12, 50, 64} { // in 64ths of bytes special
				s := make([]byte, n)
				for i := range s {
					if r.IntN(64) < density {
						s[i] = alphabet[r.IntN(len(alphabet))]
					} else {
						s[i] = byte('a' + r.IntN(26))
					}
				}
				switch {
				case density == 50 && n%7 == 0: // every byte, any value
					for i := range s {
						s[i] = byte(r.Uint32())
					}
				case density == 64: // every byte \u00xx, the longest escape
					for i := range s {
						s[i] = byte(r.IntN(0x20))
					}
				}
				for _, prefix := range []string{"", "pre", string(make([]byte, 61))} {
					// room(n): Append uses dst's memory up to its end.
					for _, spare := range []int{0, 1, n, n + n/8 + 70, room(n), 6*n + 300} {
						want := ref([]byte(prefix), s)
						if got := appendGuarded(t, in, out, []byte(prefix), s, spare); !bytes.Equal(got, want) {
							t.Fatalf("Append(%q, %q) spare %d:\n got %q\nwant %q", prefix, s, spare, got, want)
						}
					}
				}
			}
		}
	})
}

// FuzzAppendDifferential compares Append with ref on any bytes, at any
// offset in its memory, after any prefix, with any spare room in dst, on
// both paths. Run it with
//
//	go test ./lib/jsonstr -run '^$' -fuzz FuzzAppendDifferential -fuzztime 5m
func FuzzAppendDifferential(f *testing.F) {
	f.Add([]byte(`{"seq":1,"ts":2,"record":{"note":"a\tb"}}`), uint8(0), uint8(3), uint16(0))
	f.Add(bytes.Repeat([]byte("\x00\"\\\n"), 80), uint8(5), uint8(0), uint16(1))
	f.Add(bytes.Repeat([]byte("plain prose "), 30), uint8(31), uint8(64), uint16(900))
	// Guarded memory for input and output, made once: a fuzz run calls
	// the function millions of times.
	size := 1 << 20
	gIn, gOut := newGuard(f, size), newGuard(f, 8*size)
	f.Fuzz(func(t *testing.T, s []byte, off, prefixLen uint8, spare uint16) {
		if len(s) > size {
			t.Skip("longer than the guarded memory")
		}
		// s at offset off of its memory: the kernel's loads start at
		// every alignment.
		mem := make([]byte, int(off)+len(s))
		b := mem[off:]
		copy(b, s)
		prefix := bytes.Repeat([]byte{'p'}, int(prefixLen))
		want := ref(bytes.Clone(prefix), s)
		saved := useBlocks
		defer func() { useBlocks = saved }()
		for _, on := range []bool{saved, false} {
			useBlocks = on
			dst := append(make([]byte, 0, len(prefix)+int(spare)), prefix...)
			if got := Append(dst, b); !bytes.Equal(got, want) {
				t.Fatalf("blocks %v: Append(%q, %q):\n got %q\nwant %q", on, prefix, s, got, want)
			}
			if got := appendGuarded(t, gIn, gOut, prefix, s, int(spare)); !bytes.Equal(got, want) {
				t.Fatalf("blocks %v, guarded: Append(%q, %q):\n got %q\nwant %q", on, prefix, s, got, want)
			}
		}
	})
}

// BenchmarkAppendPaths: Append with the vector kernel ("blocks", where
// there is one), with the word loop alone ("words"), and Append as it was
// before the kernel ("main", appendMain), in one run, on
// real record lines (testdata/records.ndjson: 128 lines of audit-read's
// output for audit-sample's events; records-awkward.ndjson: 32 from
// audit-sample --awkward), plain prose, JSON dense with quotes, and short
// strings of every size audit-read escapes (ids, kinds, hashes). Besides
// ns/op it reports cpu-ns/op, the thread's CPU time (Linux), which other
// processes on a shared host disturb less:
//
//	go test ./lib/jsonstr -run '^$' -bench AppendPaths -count 10 | benchstat -col /path -
func BenchmarkAppendPaths(b *testing.B) {
	lines := func(name string) [][]byte {
		data, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		return bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	}
	records := lines("testdata/records.ndjson")
	type input struct {
		name  string
		lines [][]byte
	}
	inputs := []input{
		{"records", records},
		{"awkward", lines("testdata/records-awkward.ndjson")},
		{"prose", [][]byte{[]byte(strings.Repeat("resolved refund customer threshold escalated ", 17))}},
		{"quote-dense", [][]byte{[]byte(strings.Repeat(`{"a":"b","cd":1},`, 44))}},
	}
	for _, n := range []int{8, 16, 24, 31, 32, 40, 48, 63, 64, 100, 200} {
		inputs = append(inputs, input{fmt.Sprintf("short-%03d", n), [][]byte{records[0][:n]}})
	}
	saved := useBlocks
	defer func() { useBlocks = saved }()
	dst := make([]byte, 0, 1<<16)
	for _, in := range inputs {
		var size int64
		for _, l := range in.lines {
			size += int64(len(l))
		}
		for _, path := range []string{"blocks", "words", "main"} {
			if path == "blocks" && !saved {
				continue
			}
			b.Run(in.name+"/path="+path, func(b *testing.B) {
				useBlocks = path == "blocks"
				f := Append
				if path == "main" {
					f = appendMain
				}
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				b.SetBytes(size)
				cpu := threadCPU()
				for b.Loop() {
					for _, l := range in.lines {
						dst = f(dst[:0], l)
					}
				}
				if cpu := threadCPU() - cpu; cpu > 0 {
					b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
				}
			})
		}
	}
}
