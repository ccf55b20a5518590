package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// day1 is 2025-11-27T12:00:00Z (noon) in milliseconds.
const day1 = int64(1764244800000)

const dayMs = int64(24 * time.Hour / time.Millisecond)

// lines are record lines as a shipper gets them: exact bytes, awkward ones
// included (escapes, non-ASCII, raw U+2028, a number form a re-serialiser
// would change, trailing blank inside the object).
var lines = []string{
	`{"seq":1,"ts":1764244800000,"tenantId":"acme","kind":"k","record":{"a":"q\"b\\c ü 😀 ` + "\u2028" + `","n":1.50},"prevHash":"","recordHash":"aa"}`,
	`{"seq":2,"ts":1764244800001,"tenantId":"acme","kind":"k","record":{"x":1e21 },"prevHash":"aa","recordHash":"bb"}`,
	`{"seq":3,"ts":1764244800002,"tenantId":"_system","kind":"k","record":{},"prevHash":"bb","recordHash":"cc"}`,
}

func recs(ts int64, ls ...string) []sink.Record {
	out := make([]sink.Record, len(ls))
	for i, l := range ls {
		out[i] = sink.Record{Seq: int64(i + 1), TS: ts, Line: []byte(l)}
	}
	return out
}

func joined(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

func newSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func send(t *testing.T, s *Sink, rs []sink.Record) sink.Result {
	t.Helper()
	res, err := s.Send(t.Context(), rs)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range res.Status {
		if st != sink.Delivered {
			t.Fatalf("record %d: %v, want delivered", i, st)
		}
	}
	return res
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// gunzip reads a multi-member gzip file whole, as any gzip reader does by
// default, and counts its members.
func gunzip(t *testing.T, name string) (string, int) {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("read %s multistream: %v", name, err)
	}
	br := bytes.NewReader(raw)
	members := 0
	for br.Len() > 0 {
		if err := zr.Reset(br); err != nil {
			t.Fatal(err)
		}
		zr.Multistream(false)
		if _, err := io.Copy(io.Discard, zr); err != nil {
			t.Fatal(err)
		}
		members++
	}
	return string(all), members
}

func gzipBytes(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

func TestSendByteExact(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.ndjson")
	s := newSink(t, Config{Path: name})
	send(t, s, recs(day1, lines[0], lines[1]))
	send(t, s, recs(day1, lines[2]))
	if got, want := readFile(t, name), joined(lines...); got != want {
		t.Errorf("file:\n%q\nwant\n%q", got, want)
	}
	if res, err := s.Send(t.Context(), nil); err != nil || len(res.Status) != 0 {
		t.Errorf("empty Send: %v, %v", res, err)
	}
}

func TestSendNoFsync(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.ndjson")
	s := newSink(t, Config{Path: name, NoFsync: true})
	send(t, s, recs(day1, lines...))
	if got := readFile(t, name); got != joined(lines...) {
		t.Errorf("file %q", got)
	}
}

func TestPoison(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.ndjson")
	s := newSink(t, Config{Path: name})
	res, err := s.Send(t.Context(), recs(day1, lines[0], "", "{\"a\":\n1}", lines[1]))
	if err != nil {
		t.Fatal(err)
	}
	want := []sink.Status{sink.Delivered, sink.Poison, sink.Poison, sink.Delivered}
	if !slices.Equal(res.Status, want) {
		t.Errorf("status %v, want %v", res.Status, want)
	}
	if res.Reason[1] == "" || res.Reason[2] == "" || res.Reason[0] != "" {
		t.Errorf("reasons %q", res.Reason)
	}
	if got := readFile(t, name); got != joined(lines[0], lines[1]) {
		t.Errorf("file %q", got)
	}
	// A batch of nothing but poison writes nothing and creates no file.
	other := filepath.Join(t.TempDir(), "x.ndjson")
	s2 := newSink(t, Config{Path: other})
	if res, err := s2.Send(t.Context(), recs(day1, "")); err != nil || res.Status[0] != sink.Poison {
		t.Errorf("all-poison Send: %v %v", res, err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("all-poison Send created the file (%v)", err)
	}
}

func TestGzipMultiMember(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.ndjson.gz")
	s := newSink(t, Config{Path: name, Gzip: true})
	for _, l := range lines {
		send(t, s, recs(day1, l))
	}
	got, members := gunzip(t, name)
	if got != joined(lines...) {
		t.Errorf("content %q", got)
	}
	if members != len(lines) {
		t.Errorf("%d gzip members, want one per Send (%d)", members, len(lines))
	}
	// A new sink appends members to the existing file.
	s.Close()
	s2 := newSink(t, Config{Path: name, Gzip: true})
	send(t, s2, recs(day1, lines[0]))
	if got, members := gunzip(t, name); got != joined(append(lines, lines[0])...) || members != 4 {
		t.Errorf("after reopen: %d members, %q", members, got)
	}
}

func TestPermissions(t *testing.T) {
	root := t.TempDir()
	name := filepath.Join(root, "a", "b", "audit.ndjson")
	s := newSink(t, Config{Path: name})
	send(t, s, recs(day1, lines[0]))
	dirPath := filepath.Join(root, "d", "archive")
	sd := newSink(t, Config{Path: dirPath, Dir: true, Gzip: true})
	send(t, sd, recs(day1, lines[0]))
	for _, c := range []struct {
		path string
		want os.FileMode
	}{
		{name, 0o600},
		{filepath.Join(root, "a"), 0o700 | os.ModeDir},
		{filepath.Join(root, "a", "b"), 0o700 | os.ModeDir},
		{dirPath, 0o700 | os.ModeDir},
		{filepath.Join(dirPath, "audit-2025-11-27.ndjson.gz"), 0o600},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.want {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode(), c.want)
		}
	}
}

func TestTornTailPlain(t *testing.T) {
	for _, c := range []struct {
		name, before, want string
	}{
		{"torn line", joined(lines[0]) + `{"seq":2,"ts":17642`, joined(lines[0]) + `{"seq":2,"ts":17642` + "\n" + joined(lines[1], lines[2])},
		{"zero fill", joined(lines[0]) + "\x00\x00\x00", joined(lines[0]) + "\x00\x00\x00\n" + joined(lines[1], lines[2])},
		{"clean", joined(lines[0]), joined(lines...)},
		{"empty", "", joined(lines[1], lines[2])},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "audit.ndjson")
			if err := os.WriteFile(name, []byte(c.before), 0o600); err != nil {
				t.Fatal(err)
			}
			s := newSink(t, Config{Path: name})
			send(t, s, recs(day1, lines[1]))
			send(t, s, recs(day1, lines[2]))
			if got := readFile(t, name); got != c.want {
				t.Errorf("file:\n%q\nwant\n%q", got, c.want)
			}
		})
	}
}

func TestTornTailGzip(t *testing.T) {
	m1, m2 := gzipBytes(joined(lines[0])), gzipBytes(joined(lines[1]))
	for _, c := range []struct {
		name string
		torn []byte
	}{
		{"half member", m2[:len(m2)/2]},
		{"no trailer", m2[:len(m2)-3]},
		{"header byte", m2[:1]},
		{"half member and zero fill", append(slices.Clip(m2[:len(m2)/2]), make([]byte, 4096)...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			name := filepath.Join(dir, "audit.ndjson.gz")
			if err := os.WriteFile(name, slices.Concat(m1, c.torn), 0o600); err != nil {
				t.Fatal(err)
			}
			s := newSink(t, Config{Path: name, Gzip: true})
			send(t, s, recs(day1, lines[2]))
			if got, members := gunzip(t, name); got != joined(lines[0], lines[2]) || members != 2 {
				t.Errorf("after repair: %d members, %q", members, got)
			}
			saved, _ := filepath.Glob(name + ".torn-*")
			if len(saved) != 1 {
				t.Fatalf("torn tail files: %v", saved)
			}
			if got := readFile(t, saved[0]); got != string(c.torn) {
				t.Errorf("saved torn tail %q, want %q", got, c.torn)
			}
			if fi, _ := os.Stat(saved[0]); fi.Mode() != 0o600 {
				t.Errorf("torn tail file mode %v", fi.Mode())
			}
		})
	}

	t.Run("whole file torn", func(t *testing.T) {
		name := filepath.Join(t.TempDir(), "audit.ndjson.gz")
		if err := os.WriteFile(name, m1[:len(m1)/2], 0o600); err != nil {
			t.Fatal(err)
		}
		s := newSink(t, Config{Path: name, Gzip: true})
		send(t, s, recs(day1, lines[2]))
		if got, _ := gunzip(t, name); got != joined(lines[2]) {
			t.Errorf("after repair %q", got)
		}
	})

	t.Run("damage before intact members", func(t *testing.T) {
		// Not a torn tail: cutting here would lose delivered records.
		name := filepath.Join(t.TempDir(), "audit.ndjson.gz")
		bad := slices.Clone(m2)
		bad[len(bad)-6] ^= 0xff // break the CRC of the middle member
		before := slices.Concat(m1, bad, m1)
		if err := os.WriteFile(name, before, 0o600); err != nil {
			t.Fatal(err)
		}
		s := newSink(t, Config{Path: name, Gzip: true})
		_, err := s.Send(t.Context(), recs(day1, lines[2]))
		var se *sink.Error
		if !errors.As(err, &se) || se.Class != sink.Config || !strings.Contains(se.Msg, "damaged") {
			t.Errorf("Send on a damaged file: %v", err)
		}
		if got := readFile(t, name); got != string(before) {
			t.Error("damaged file was changed")
		}
	})
}

func TestFormatMismatch(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	gz := filepath.Join(dir, "gz")
	os.WriteFile(plain, []byte(joined(lines[0])), 0o600)
	os.WriteFile(gz, gzipBytes(joined(lines[0])), 0o600)
	for _, c := range []struct {
		path string
		gzip bool
	}{{plain, true}, {gz, false}} {
		s := newSink(t, Config{Path: c.path, Gzip: c.gzip})
		_, err := s.Send(t.Context(), recs(day1, lines[1]))
		var se *sink.Error
		if !errors.As(err, &se) || se.Class != sink.Config {
			t.Errorf("%s with Gzip=%v: Send error %v, want a config error", c.path, c.gzip, err)
		}
		if err := s.Check(t.Context()); err == nil {
			t.Errorf("%s with Gzip=%v: Check passed", c.path, c.gzip)
		}
	}
	if readFile(t, plain) != joined(lines[0]) || !bytes.Equal([]byte(readFile(t, gz)), gzipBytes(joined(lines[0]))) {
		t.Error("a mismatched file was changed")
	}
}

func TestConcurrentSends(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.ndjson")
	s := newSink(t, Config{Path: name})
	const senders, per = 16, 50
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			batch := make([]string, per)
			for i := range batch {
				batch[i] = fmt.Sprintf(`{"g":%d,"i":%d,"pad":"%s"}`, g, i, strings.Repeat("x", 1000))
			}
			if _, err := s.Send(context.Background(), recs(day1, batch...)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := strings.Split(strings.TrimSuffix(readFile(t, name), "\n"), "\n")
	if len(got) != senders*per {
		t.Fatalf("%d lines, want %d", len(got), senders*per)
	}
	// Each batch is contiguous and in order.
	seen := map[int]bool{}
	for b := 0; b < senders; b++ {
		var g int
		fmt.Sscanf(got[b*per], `{"g":%d`, &g)
		if seen[g] {
			t.Fatalf("batch %d written twice", g)
		}
		seen[g] = true
		for i := range per {
			want := fmt.Sprintf(`{"g":%d,"i":%d,`, g, i)
			if !strings.HasPrefix(got[b*per+i], want) {
				t.Fatalf("line %d = %.20s…, want %s… (batches interleaved)", b*per+i, got[b*per+i], want)
			}
		}
	}
}

func TestSendOrderIsCallOrder(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.ndjson")
	s := newSink(t, Config{Path: name})
	s.lock <- struct{}{} // hold the lock while the senders queue up
	var wg sync.WaitGroup
	const n = 6
	for g := range n {
		wg.Go(func() {
			if _, err := s.Send(context.Background(), recs(day1, fmt.Sprintf(`{"g":%d}`, g))); err != nil {
				t.Error(err)
			}
		})
		time.Sleep(20 * time.Millisecond) // let sender g block before g+1 starts
	}
	s.release()
	wg.Wait()
	var want []string
	for g := range n {
		want = append(want, fmt.Sprintf(`{"g":%d}`, g))
	}
	if got := readFile(t, name); got != joined(want...) {
		t.Errorf("order:\n%s", got)
	}
}

func TestSendContextWhileWaiting(t *testing.T) {
	s := newSink(t, Config{Path: filepath.Join(t.TempDir(), "a")})
	s.lock <- struct{}{}
	defer s.release()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	res, err := s.Send(ctx, recs(day1, lines[0]))
	if !errors.Is(err, context.DeadlineExceeded) || res.Status[0] != sink.Pending {
		t.Errorf("Send = %v, %v; want pending and the context error", res.Status, err)
	}
}

func TestReopenAfterWriteError(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.ndjson")
	s := newSink(t, Config{Path: name})
	send(t, s, recs(day1, lines[0]))
	s.f.Close() // the next write fails, as on a dead disk
	res, err := s.Send(t.Context(), recs(day1, lines[1]))
	var se *sink.Error
	if !errors.As(err, &se) || se.Class != sink.Retryable || res.Status[0] != sink.Pending {
		t.Fatalf("Send on a failing file: %v, %v", res.Status, err)
	}
	send(t, s, recs(day1, lines[1]))
	if got := readFile(t, name); got != joined(lines[0], lines[1]) {
		t.Errorf("file %q", got)
	}
}

func TestDirMode(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprint("gzip=", gz), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "archive")
			read := func(day string) string {
				name := filepath.Join(dir, "audit-"+day+ext(gz))
				if gz {
					s, _ := gunzip(t, name)
					return s
				}
				return readFile(t, name)
			}
			s := newSink(t, Config{Path: dir, Dir: true, Gzip: gz})
			send(t, s, recs(day1, lines[0]))
			// A batch straddling midnight goes whole into its first record's day.
			straddle := recs(day1+dayMs/2-1, lines[1], lines[2]) // 23:59:59.999
			straddle[1].TS = day1 + dayMs
			send(t, s, straddle)
			send(t, s, recs(day1+dayMs, lines[2]))
			// The clock steps back: the batch stays in the newest file.
			send(t, s, recs(day1-dayMs, lines[0]))
			if got := read("2025-11-27"); got != joined(lines[0], lines[1], lines[2]) {
				t.Errorf("day 1: %q", got)
			}
			if got := read("2025-11-28"); got != joined(lines[2], lines[0]) {
				t.Errorf("day 2: %q", got)
			}
			// A new sink never goes back before the newest file in the directory.
			s.Close()
			s2 := newSink(t, Config{Path: dir, Dir: true, Gzip: gz})
			send(t, s2, recs(day1, lines[1]))
			if got := read("2025-11-28"); got != joined(lines[2], lines[0], lines[1]) {
				t.Errorf("day 2 after reopen: %q", got)
			}
			send(t, s2, recs(day1+3*dayMs, lines[1]))
			if got := read("2025-11-30"); got != joined(lines[1]) {
				t.Errorf("day 4: %q", got)
			}
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			want := []string{"audit-2025-11-27" + ext(gz), "audit-2025-11-28" + ext(gz), "audit-2025-11-30" + ext(gz)}
			if !slices.Equal(names, want) {
				t.Errorf("files %v, want %v", names, want)
			}
		})
	}
	if got := FileName(time.UnixMilli(day1+dayMs/2-1), true); got != "audit-2025-11-27.ndjson.gz" {
		t.Errorf("FileName = %q", got)
	}
	if got := FileName(time.UnixMilli(day1).In(time.FixedZone("x", 14*3600)), false); got != "audit-2025-11-27.ndjson" {
		t.Errorf("FileName in a far zone = %q, want the UTC day", got)
	}
}

func TestCheck(t *testing.T) {
	root := t.TempDir()
	for _, cfg := range []Config{
		{Path: filepath.Join(root, "new", "audit.ndjson")},
		{Path: filepath.Join(root, "dir"), Dir: true},
	} {
		s := newSink(t, cfg)
		if err := s.Check(t.Context()); err != nil {
			t.Errorf("Check %+v: %v", cfg, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, "new"))
	if len(entries) != 0 {
		t.Errorf("Check left files behind: %v", entries)
	}
	// A parent that is a file cannot be a directory, even for root.
	blocker := filepath.Join(root, "blocker")
	os.WriteFile(blocker, nil, 0o600)
	s := newSink(t, Config{Path: filepath.Join(blocker, "audit.ndjson")})
	if err := s.Check(t.Context()); err == nil {
		t.Error("Check passed under a file")
	}
	if _, err := s.Send(t.Context(), recs(day1, lines[0])); err == nil {
		t.Error("Send passed under a file")
	}
	if os.Geteuid() != 0 {
		ro := filepath.Join(root, "ro")
		os.Mkdir(ro, 0o500)
		s := newSink(t, Config{Path: filepath.Join(ro, "audit.ndjson")})
		if err := s.Check(t.Context()); err == nil {
			t.Error("Check passed in a read-only directory")
		}
		var se *sink.Error
		if _, err := s.Send(t.Context(), recs(day1, lines[0])); !errors.As(err, &se) || se.Class != sink.Config {
			t.Errorf("Send in a read-only directory: %v, want a config error", err)
		}
	}
}

func TestClose(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.ndjson")
	s, err := New(Config{Path: name})
	if err != nil {
		t.Fatal(err)
	}
	send(t, s, recs(day1, lines[0]))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	var se *sink.Error
	if _, err := s.Send(t.Context(), recs(day1, lines[1])); !errors.As(err, &se) || se.Class != sink.Config {
		t.Errorf("Send after Close: %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New with no path succeeded")
	}
}
