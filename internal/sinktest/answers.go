package sinktest

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/internal/fakehttp"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// Answer is a reply to a write request that is not the SIEM's documented
// success answer, with what the sink's error must name.
type Answer struct {
	Name string
	Raw  fakehttp.Raw
	// Big: send a request body far larger than the kernel's socket
	// buffers, so an Early answer arrives while the body is being written.
	Big bool
	// Want are substrings the error must hold (besides "HTTP <status>").
	Want []string
}

// WrongAnswers are the answers that no SIEM gives on success, shared by
// the three HTTP sinks' tests; each sink adds its own (a wrong item
// count, a wrong status). secret is echoed in one of the bodies: the
// error must not show it.
func WrongAnswers(secret string) []Answer {
	return []Answer{
		{Name: "HTML 200 from a proxy", Raw: fakehttp.Raw{ContentType: "text/html; charset=utf-8",
			Body: "<html><head><title>Proxy login</title></head><body>Sign in, key " + secret + "</body></html>"},
			Want: []string{`"text/html; charset=utf-8"`, "<html><head><title>Proxy login"}},
		{Name: "empty 200", Raw: fakehttp.Raw{}, Want: []string{"empty body", "no Content-Type"}},
		{Name: "empty 200 as JSON", Raw: fakehttp.Raw{ContentType: "application/json"}, Want: []string{"empty body"}},
		{Name: "truncated JSON", Raw: fakehttp.Raw{ContentType: "application/json", Body: `{"text":"Success","co`},
			Want: []string{`{\"text\":\"Success\",\"co`}},
		{Name: "JSON array", Raw: fakehttp.Raw{ContentType: "application/json", Body: `[]`}, Want: []string{`"[]"`}},
		{Name: "early empty reply", Raw: fakehttp.Raw{Early: true}, Want: []string{"empty body"}},
		{Name: "early reply before the body was read", Big: true,
			Raw:  fakehttp.Raw{Early: true, ContentType: "text/plain", Body: "OK"},
			Want: []string{"before the request body was sent in full"}},
	}
}

// Early is an Early answer that looks like success to a sink that reads
// the body only: only the bytes-sent check can see that nothing was read.
func Early(body string) Answer {
	return Answer{Name: "early success-looking reply before the body was read", Big: true,
		Raw:  fakehttp.Raw{Early: true, ContentType: "application/json", Body: body},
		Want: []string{"before the request body was sent in full"}}
}

// Has reports the first of want that msg lacks, "" if it has them all.
func Has(msg string, want ...string) string {
	for _, w := range want {
		if !strings.Contains(msg, w) {
			return w
		}
	}
	return ""
}

// SkipIfBuffered skips a Big (Early) case when the kernel may take a
// request body of size bytes whole into its socket send buffer before the
// server answers: the client then cannot see that the body was not read.
// It reads Linux's tcp_wmem maximum (4 MiB by default) and assumes the
// worst elsewhere only when the file is missing (then it does not skip).
func SkipIfBuffered(t testing.TB, size int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	if err != nil {
		return
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return
	}
	if max, err := strconv.Atoi(f[2]); err == nil && max+(512<<10) >= size {
		t.Skipf("the socket send buffer (up to %d bytes) may take the whole %d-byte body", max, size)
	}
}

// OnlySuccessCounts sends a batch against each of WrongAnswers (with the
// target's first secret echoed) and extra, the sink's own, answered by
// send (which starts the fake with raw for its write endpoint, sends the
// records, big ones if big, and returns how many and what Send did): each must deliver
// nothing and be a Retryable failure naming what answered (its status and
// c.Want), never a secret.
func OnlySuccessCounts(t *testing.T, secrets []string, send func(t *testing.T, raw *fakehttp.Raw, big bool) (n int, res sink.Result, err error), extra ...Answer) {
	tg := Target{Secrets: secrets}
	for _, c := range append(WrongAnswers(secrets[0]), extra...) {
		t.Run(c.Name, func(t *testing.T) {
			raw := c.Raw
			n, res, err := send(t, &raw, c.Big)
			tg.noSecret(t, err)
			var se *sink.Error
			if !errors.As(err, &se) || se.Class != sink.Retryable {
				t.Fatalf("want a retryable *sink.Error, got %v (statuses %v)", err, res.Status[:3])
			}
			if !slices.Equal(res.Status, Repeat(sink.Pending, n)) {
				t.Fatalf("records counted as delivered on %s: %v", c.Name, res.Status[:3])
			}
			st := raw.Status
			if st == 0 {
				st = 200
			}
			msg := err.Error()
			t.Log(msg)
			if miss := Has(msg, append(c.Want, "HTTP "+strconv.Itoa(st))...); miss != "" {
				t.Fatalf("error lacks %q:\n%s", miss, msg)
			}
		})
	}
}
