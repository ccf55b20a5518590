// Package badinput feeds bad input to every auditpipe binary, built and run
// as a user runs it: random bytes, a 100 MB line (streamed through a
// pipe, never held by the test), invalid UTF-8, wrong field types, JSON
// that is valid but not what the binary reads, an empty stream, and a FIFO
// path that is a regular file. Each must give a clear error naming the
// line (the row, for audit-fetch), a documented exit code, no panic, and
// must not lose what was valid before the bad line: the good lines before
// it come out, are appended, shipped or committed.
package badinput

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

var bin string

var binaries = []string{"audit-read", "audit-verify", "audit-batch", "audit-ship", "audit-ack", "audit-append", "audit-fetch", "audit-sample"}

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "auditpipe-badinput-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	args := []string{"build", "-o", dir + "/"}
	for _, b := range binaries {
		args = append(args, "./cmd/"+b)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixture: five events, the database they make, and its record lines.
type fixture struct {
	dir    string
	events []string
	recs   []string
	hashes []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir()}
	out, err := exec.Command(filepath.Join(bin, "audit-sample"), "--count", "5", "--seed", "3").Output()
	if err != nil {
		t.Fatal(err)
	}
	f.events = strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	db := filepath.Join(f.dir, "src.db")
	app := exec.Command(filepath.Join(bin, "audit-append"), "--db", db, "--quiet")
	app.Stdin = bytes.NewReader(out)
	if b, err := app.CombinedOutput(); err != nil {
		t.Fatalf("audit-append: %v\n%s", err, b)
	}
	out, err = exec.Command(filepath.Join(bin, "audit-read"), "--db", db, "--quiet").Output()
	if err != nil {
		t.Fatal(err)
	}
	f.recs = strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	for _, r := range f.recs {
		var v struct {
			RecordHash string `json:"recordHash"`
		}
		json.Unmarshal([]byte(r), &v)
		f.hashes = append(f.hashes, v.RecordHash)
	}
	return f
}

func (f *fixture) ack(first, last int) string {
	return fmt.Sprintf(`{"ack":{"exporter":"x:bad","firstSeq":%d,"lastSeq":%d,"lastHash":%q,"count":%d,"quarantined":[]}}`,
		first, last, f.hashes[last-1], last-first+1)
}

// The bad inputs. Each is the third line of the stream, between two good
// lines and one good line, except "empty" (nothing at all).
const (
	random    = "random bytes"
	long      = "a 100 MB line"
	badUTF8   = "invalid UTF-8"
	types     = "wrong field types"
	notRecord = "valid JSON, not a record"
	empty     = "an empty stream"
)

var cases = []string{random, long, badUTF8, types, notRecord, empty}

const longSize = 100 << 20

// payload returns the bad line for kind of input (records, events, acks,
// rows), or "" for long (streamed) and empty.
func payload(c, input string) string {
	switch c {
	case random:
		rng := rand.New(rand.NewPCG(7, 7))
		b := make([]byte, 4096)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return "\xff\x00" + string(b) // starts bad: NUL and a byte no UTF-8 has
	case badUTF8:
		switch input {
		case "acks":
			return `{"ack":{"exporter":"x:bad` + "\xff\xfe" + `"}}`
		case "rows":
			return `{"_msg":"{\"seq\":3,\"x\":\"` + "\xff\xfe" + `\"}"}`
		}
		return `{"seq":3,"x":"` + "\xff\xfe" + `"}`
	case types:
		switch input {
		case "events":
			return `{"kind":2,"ts":"yesterday","tenantId":["a"]}`
		case "acks":
			return `{"ack":{"exporter":"x:bad","firstSeq":"3","lastSeq":true,"lastHash":1,"count":"2","quarantined":{}}}`
		case "rows":
			return `{"_msg":12}`
		}
		return `{"seq":"3","ts":"x","tenantId":1,"kind":2,"record":{},"prevHash":3,"recordHash":4}`
	case notRecord:
		switch input {
		case "events":
			return `[1,2,3]`
		case "acks":
			return `{"seq":3,"ts":1,"tenantId":"a","kind":"k","record":{},"prevHash":"","recordHash":""}`
		case "rows":
			return `{"hits":{"total":3}}`
		}
		return `{"hello":"world"}`
	}
	return ""
}

// binCase is how one binary is fed and checked.
type binCase struct {
	bin   string
	input string // records, events, acks, rows
	args  func(t *testing.T, f *fixture, dir string) []string
	codes map[string]int // exit code per case
	where string         // how the error names the bad line
	// good checks that what was valid before the bad line came through.
	good func(t *testing.T, f *fixture, dir, stdout string, c string)
}

func sqlInt(t *testing.T, db, q string) int64 {
	t.Helper()
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n int64
	if err := d.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func wantPrefix(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.HasPrefix(got, want) {
		t.Errorf("%s does not start with the good lines before the bad one:\n got %.300q\nwant %.300q", what, got, want)
	}
}

var table = []binCase{
	{
		bin: "audit-read", input: "records",
		// With a filter each line must parse as a record (without one
		// audit-read passes lines on for audit-verify to judge).
		args:  func(*testing.T, *fixture, string) []string { return []string{"--from-seq", "1", "--quiet", "-"} },
		codes: map[string]int{random: 4, long: 4, badUTF8: 4, types: 4, notRecord: 4, empty: 0},
		where: "stdin: line 3",
		good: func(t *testing.T, f *fixture, _, stdout, c string) {
			if c != empty {
				wantPrefix(t, "stdout", stdout, f.recs[0]+"\n"+f.recs[1]+"\n")
			}
		},
	},
	{
		bin: "audit-verify", input: "records",
		args:  func(*testing.T, *fixture, string) []string { return []string{"--quiet"} },
		codes: map[string]int{random: 3, long: 4 /* a size limit, not tampering (issue 12 item 1e) */, badUTF8: 3, types: 3, notRecord: 3, empty: 0},
		where: "line 3",
		good: func(t *testing.T, f *fixture, _, stdout, c string) {
			if c != empty && stdout != f.recs[0]+"\n"+f.recs[1]+"\n" {
				t.Errorf("stdout %.300q, want exactly the two verified lines before the bad one", stdout)
			}
		},
	},
	{
		bin: "audit-batch", input: "records",
		args:  func(*testing.T, *fixture, string) []string { return []string{"--quiet"} },
		codes: map[string]int{random: 4, long: 4, badUTF8: 4, types: 4, notRecord: 4, empty: 0},
		where: "line 3",
		good: func(t *testing.T, f *fixture, _, stdout, c string) {
			if c == empty {
				return
			}
			lines := strings.Split(stdout, "\n")
			if len(lines) < 3 || !strings.HasPrefix(lines[0], `{"batch":`) || lines[1] != f.recs[0] || lines[2] != f.recs[1] {
				t.Errorf("stdout %.300q, want a batch of the two good lines", stdout)
			}
		},
	},
	{
		bin: "audit-ship", input: "records",
		args: func(_ *testing.T, _ *fixture, dir string) []string {
			return []string{"--kind", "file", "--path", filepath.Join(dir, "out.ndjson"), "--gzip=false", "--acks", "-", "--exporter", "x:bad", "--quiet"}
		},
		codes: map[string]int{random: 4, long: 4, badUTF8: 4, types: 4, notRecord: 4, empty: 0},
		where: "line 3",
		good: func(t *testing.T, f *fixture, dir, stdout, c string) {
			if c == empty {
				return
			}
			b, _ := os.ReadFile(filepath.Join(dir, "out.ndjson"))
			wantPrefix(t, "the shipped file", string(b), f.recs[0]+"\n"+f.recs[1]+"\n")
			if !strings.Contains(stdout, `"lastSeq":2`) {
				t.Errorf("acks %q do not cover the two shipped records", stdout)
			}
		},
	},
	{
		bin: "audit-append", input: "events",
		args: func(_ *testing.T, _ *fixture, dir string) []string {
			return []string{"--db", filepath.Join(dir, "new.db"), "--quiet"}
		},
		codes: map[string]int{random: 4, long: 4, badUTF8: 4, types: 4, notRecord: 4, empty: 0},
		where: "line 3",
		good: func(t *testing.T, _ *fixture, dir, _, c string) {
			want := int64(2)
			if c == empty {
				want = 0
			}
			if n := sqlInt(t, filepath.Join(dir, "new.db"), `SELECT COUNT(*) FROM audit_records`); n != want {
				t.Errorf("%d records appended, want %d (the good events before the bad line)", n, want)
			}
		},
	},
	{
		bin: "audit-ack", input: "acks",
		args: func(t *testing.T, f *fixture, dir string) []string {
			db := filepath.Join(dir, "ack.db")
			copyFile(t, filepath.Join(f.dir, "src.db"), db)
			return []string{"--db", db, "--exporter", "x:bad", "--quiet"}
		},
		// A bad ack line is skipped (acks are cumulative: the next one
		// covers it) and reported with its line; exit 0.
		codes: map[string]int{random: 0, long: 0, badUTF8: 0, types: 0, notRecord: 0, empty: 0},
		where: "line 3",
		good: func(t *testing.T, _ *fixture, dir, _, c string) {
			q := `SELECT COALESCE((SELECT last_seq FROM audit_export_cursor WHERE exporter_name = 'x:bad'), 0)`
			want := int64(3) // the good acks before and after the bad line
			if c == empty {
				want = 0
			}
			if n := sqlInt(t, filepath.Join(dir, "ack.db"), q); n != want {
				t.Errorf("cursor %d, want %d", n, want)
			}
		},
	},
	{
		bin: "audit-fetch", input: "rows",
		args:  nil, // set per run: the URL of the fake store
		codes: map[string]int{random: 4, long: 4, badUTF8: 4, types: 4, notRecord: 4, empty: 0},
		where: "row 3",
		good: func(t *testing.T, f *fixture, _, stdout, c string) {
			if c != empty && stdout != f.recs[0]+"\n"+f.recs[1]+"\n" {
				t.Errorf("stdout %.300q, want exactly the two good rows before the bad one", stdout)
			}
		},
	},
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// goodLines are the lines around the bad one, for an input kind.
func goodLines(f *fixture, input string) (before []string, after string) {
	switch input {
	case "events":
		return f.events[:2], f.events[3]
	case "acks":
		return []string{f.ack(1, 1), f.ack(2, 2)}, f.ack(3, 3)
	case "rows":
		row := func(s string) string { b, _ := json.Marshal(map[string]string{"_msg": s}); return string(b) }
		return []string{row(f.recs[0]), row(f.recs[1])}, row(f.recs[2])
	}
	return f.recs[:2], f.recs[2]
}

// stream writes the input of case c to w: good, good, bad, good. The long
// line is generated on the fly, 1 MiB at a time.
func stream(w io.Writer, f *fixture, c, input string) {
	if c == empty {
		return
	}
	before, after := goodLines(f, input)
	for _, l := range before {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return
		}
	}
	if c == long {
		prefix := `{"seq":3,"x":"`
		if input == "rows" {
			prefix = `{"_msg":"`
		}
		if _, err := io.WriteString(w, prefix); err != nil {
			return
		}
		chunk := bytes.Repeat([]byte("a"), 1<<20)
		for n := 0; n < longSize; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the binary gave up on the line: fine
			}
		}
		io.WriteString(w, `"}`+"\n")
	} else {
		io.WriteString(w, payload(c, input)+"\n")
	}
	io.WriteString(w, after+"\n")
}

func TestBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every binary on 100 MB inputs: skipped with -short")
	}
	f := newFixture(t)
	for _, bc := range table {
		for _, c := range cases {
			t.Run(bc.bin+"/"+c, func(t *testing.T) {
				dir := t.TempDir()
				var args []string
				var stdin io.Reader
				if bc.input == "rows" {
					// audit-fetch reads a store's query API: a fake one here.
					srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if strings.Contains(r.FormValue("query"), "| stats") { // audit-fetch's kind and shipment checks
							w.Write([]byte(`{"splunk":"3","elastic":"0","datadog":"0","lo":"1","hi":"3","n":"3"}` + "\n"))
							return
						}
						stream(w, f, c, "rows")
					}))
					defer srv.Close()
					args = []string{"--url", srv.URL}
				} else {
					args = bc.args(t, f, dir)
					pr, pw := io.Pipe()
					go func() { stream(pw, f, c, bc.input); pw.Close() }()
					defer pr.Close()
					stdin = pr
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, filepath.Join(bin, bc.bin), args...)
				cmd.Stdin = stdin
				if c == long && bc.bin != "audit-ack" && bc.bin != "audit-fetch" { // the stages with --max-line
					// The memory bound of a line over --max-line, at a 4 MiB
					// cap: the rest is discarded as it comes, never held. (At
					// the 64 MiB default the same holds above 64 MiB.)
					prefix := strings.ToUpper(strings.ReplaceAll(bc.bin, "-", "_"))
					cmd.Env = append(os.Environ(), prefix+"_MAX_LINE=4194304")
				}
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				se := stderr.String()
				if strings.Contains(se, "panic:") || strings.Contains(se, "goroutine ") {
					t.Fatalf("%s panicked:\n%s", bc.bin, se)
				}
				if want := bc.codes[c]; code != want {
					t.Errorf("exit code %d, want %d\nstderr: %.1000s", code, want, se)
				}
				if c != empty && !strings.Contains(se, bc.where) {
					t.Errorf("stderr does not say where (%q):\n%.1000s", bc.where, se)
				}
				if c == long {
					if len(se) > 64<<10 || strings.Contains(se, strings.Repeat("a", 1000)) {
						t.Errorf("stderr echoes the long line (%d bytes)", len(se))
					}
					if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > 64<<10 {
						t.Errorf("peak RSS %d MiB for a 100 MB line: the line was held in memory", ru.Maxrss>>10)
					}
				}
				bc.good(t, f, dir, stdout.String(), c)
			})
		}
	}
}

// A FIFO path that is a regular file is refused with exit 2, names the
// path, and leaves the file as it was.
func TestFIFOPathIsARegularFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries: skipped with -short")
	}
	f := newFixture(t)
	for _, tc := range []struct {
		bin  string
		args func(dir, reg string) []string
	}{
		{"audit-ship", func(dir, reg string) []string {
			return []string{"--kind", "file", "--path", filepath.Join(dir, "out.ndjson"), "--acks", reg, "--exporter", "x:bad"}
		}},
		{"audit-ack", func(dir, reg string) []string {
			db := filepath.Join(dir, "ack.db")
			copyFile(t, filepath.Join(f.dir, "src.db"), db)
			return []string{"--db", db, "--exporter", "x:bad", "--fifo", reg}
		}},
	} {
		t.Run(tc.bin, func(t *testing.T) {
			dir := t.TempDir()
			reg := filepath.Join(dir, "acks.fifo")
			const content = "not a fifo\n"
			if err := os.WriteFile(reg, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(filepath.Join(bin, tc.bin), tc.args(dir, reg)...)
			cmd.Stdin = strings.NewReader(f.recs[0] + "\n")
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != 2 {
				t.Errorf("exit code %d, want 2 (usage)\n%s", code, out)
			}
			if !strings.Contains(string(out), reg+" is a regular file, not a FIFO") {
				t.Errorf("the error does not name the path and the problem:\n%s", out)
			}
			if strings.Contains(string(out), "panic:") {
				t.Fatalf("panic:\n%s", out)
			}
			if b, _ := os.ReadFile(reg); string(b) != content {
				t.Errorf("the regular file was changed: %q", b)
			}
		})
	}
}
