// Command testsummary reads `go test -json` on stdin and prints what plain
// `go test` prints (each package's "ok"/"FAIL" line, the output of failed
// tests, build errors), then every skipped test with the reason it gave,
// and the counts. scripts/test.sh runs the suite through it.
//
//	go test -json ./... | testsummary [-fail-on-skip]
//
// It exits 1 if a test or a package failed (or the stream has none of the
// closing lines: go test itself failed), and with -fail-on-skip (CI) also
// if any test was skipped: in CI every test must run.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output, build-fail
}

type key struct{ pkg, test string }

type skip struct {
	pkg, test, reason string
}

type summary struct {
	out                     io.Writer
	buf                     map[key][]string // output of running tests
	skips                   []skip
	pass, fail, pkgs, pfail int
}

func main() {
	failOnSkip := flag.Bool("fail-on-skip", false, "exit 1 if any test was skipped (for CI)")
	flag.Parse()
	s := &summary{out: os.Stdout, buf: map[key][]string{}}
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	os.Exit(s.report(*failOnSkip))
}

func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// Not an event (go vet or the go command writing to the same
			// stream): pass it on.
			fmt.Fprintf(s.out, "%s\n", line)
			continue
		}
		s.event(e)
	}
	return sc.Err()
}

func (s *summary) event(e event) {
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.out, e.Output)
		return
	case "build-fail":
		return // the package's own "FAIL ... [build failed]" line follows
	}
	if e.Test == "" {
		// Package level: print what go test prints without -v (the
		// "ok"/"FAIL"/"?" lines, panics outside a test), not the
		// "PASS"/"FAIL" line that closes the test binary's verbose output.
		switch e.Action {
		case "output":
			if o := strings.TrimSpace(e.Output); o != "PASS" && o != "FAIL" {
				fmt.Fprint(s.out, e.Output)
			}
		case "pass", "skip":
			s.pkgs++
		case "fail":
			s.pkgs++
			s.pfail++
		}
		return
	}
	k := key{e.Package, e.Test}
	switch e.Action {
	case "output":
		s.buf[k] = append(s.buf[k], e.Output)
	case "pass":
		s.pass++
		delete(s.buf, k)
	case "fail":
		s.fail++
		for _, o := range s.buf[k] {
			if !strings.HasPrefix(o, "=== ") {
				fmt.Fprint(s.out, o)
			}
		}
		delete(s.buf, k)
	case "skip":
		s.skips = append(s.skips, skip{e.Package, e.Test, reason(s.buf[k])})
		delete(s.buf, k)
	}
}

// reason is the message of a skipped test: its output without the
// framework's own lines.
func reason(lines []string) string {
	var msg []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		msg = append(msg, t)
	}
	if len(msg) == 0 {
		return "(no reason given)"
	}
	return strings.Join(msg, " / ")
}

func (s *summary) report(failOnSkip bool) int {
	w := s.out
	if len(s.skips) > 0 {
		sort.Slice(s.skips, func(i, j int) bool {
			a, b := s.skips[i], s.skips[j]
			if a.pkg != b.pkg {
				return a.pkg < b.pkg
			}
			return a.test < b.test
		})
		fmt.Fprintf(w, "\n%d skipped:\n", len(s.skips))
		for _, sk := range s.skips {
			fmt.Fprintf(w, "  SKIP %s %s: %s\n", sk.pkg, sk.test, sk.reason)
		}
	}
	// The last line alone, in the plain form CI runners read:
	// "tests: N passed, N failed, N skipped".
	fmt.Fprintf(w, "\npackages: %d, %d failed\ntests: %d passed, %d failed, %d skipped\n",
		s.pkgs, s.pfail, s.pass, s.fail, len(s.skips))
	code := 0
	switch {
	case s.fail > 0 || s.pfail > 0:
		code = 1
	case s.pkgs == 0:
		fmt.Fprintln(w, "no package ran: go test failed before running any test (see above)")
		code = 1
	}
	if failOnSkip && len(s.skips) > 0 {
		fmt.Fprintf(w, "FAIL: %d tests skipped, and in CI every test must run: install what they need (scripts/test.sh does, as root) or fix the test\n", len(s.skips))
		code = 1
	}
	return code
}
