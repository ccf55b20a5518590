package main

import (
	"bytes"
	"strings"
	"testing"
)

// A stream as go test -json writes it (Go 1.26), trimmed.
const stream = `{"Action":"start","Package":"p/a"}
{"Action":"run","Package":"p/a","Test":"TestOK"}
{"Action":"output","Package":"p/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"p/a","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
{"Action":"pass","Package":"p/a","Test":"TestOK"}
{"Action":"run","Package":"p/a","Test":"TestNode"}
{"Action":"output","Package":"p/a","Test":"TestNode","Output":"=== RUN   TestNode\n"}
{"Action":"output","Package":"p/a","Test":"TestNode","Output":"    x_test.go:83: node not installed\n"}
{"Action":"output","Package":"p/a","Test":"TestNode","Output":"--- SKIP: TestNode (0.00s)\n"}
{"Action":"skip","Package":"p/a","Test":"TestNode"}
{"Action":"output","Package":"p/a","Output":"PASS\n"}
{"Action":"output","Package":"p/a","Output":"ok  \tp/a\t0.01s\n"}
{"Action":"pass","Package":"p/a"}
{"Action":"run","Package":"p/b","Test":"TestBad"}
{"Action":"output","Package":"p/b","Test":"TestBad","Output":"=== RUN   TestBad\n"}
{"Action":"output","Package":"p/b","Test":"TestBad","Output":"    b_test.go:9: got 1, want 2\n"}
{"Action":"output","Package":"p/b","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}
{"Action":"fail","Package":"p/b","Test":"TestBad"}
{"Action":"output","Package":"p/b","Output":"FAIL\n"}
{"Action":"output","Package":"p/b","Output":"FAIL\tp/b\t0.01s\n"}
{"Action":"fail","Package":"p/b"}
`

func TestSummary(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		failOnSkip bool
		code       int
		want, not  []string
	}{
		{"fail and skip", stream, false, 1,
			[]string{"ok  \tp/a\t0.01s\n", "    b_test.go:9: got 1, want 2\n--- FAIL: TestBad (0.00s)\n", "FAIL\tp/b\t0.01s\n",
				"1 skipped:\n  SKIP p/a TestNode: x_test.go:83: node not installed\n",
				"packages: 2, 1 failed\ntests: 1 passed, 1 failed, 1 skipped\n"},
			[]string{"=== RUN", "--- PASS", "\nPASS\n"}},
		{"skip passes outside CI", stream[:strings.Index(stream, `{"Action":"run","Package":"p/b"`)], false, 0,
			[]string{"SKIP p/a TestNode: x_test.go:83: node not installed"}, []string{"in CI every test must run"}},
		{"skip fails in CI", stream[:strings.Index(stream, `{"Action":"run","Package":"p/b"`)], true, 1,
			[]string{"FAIL: 1 tests skipped, and in CI every test must run"}, nil},
		{"nothing ran", "# p/c\nc.go:1: syntax error\n", false, 1,
			[]string{"c.go:1: syntax error", "no package ran"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			s := &summary{out: &out, buf: map[key][]string{}}
			if err := s.read(strings.NewReader(tc.in)); err != nil {
				t.Fatal(err)
			}
			if code := s.report(tc.failOnSkip); code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out.String(), n) {
					t.Errorf("output has %q:\n%s", n, out.String())
				}
			}
		})
	}
}
