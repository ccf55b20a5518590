package httpsink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true,
		"::ffff:127.0.0.1": true, "10.0.0.5": false, "example.com": false, "0.0.0.0": false, "": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestRetryAfter holds the cases the three sinks' tests each had.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"": 0, "7": 7 * time.Second, " 2 ": 2 * time.Second, "-1": 0, "soon": 0,
		"Fri, 27 Nov 2026 12:00:30 GMT": 30 * time.Second, "Fri, 27 Nov 2026 11:00:00 GMT": 0,
		" 120 ": 2 * time.Minute, "0": 0, "1.5": 0, "99999999999999999999": 0,
		now.Add(30 * time.Second).Format(http.TimeFormat):  30 * time.Second,
		now.Add(-30 * time.Second).Format(http.TimeFormat): 0,
		"Fri, 27 Nov 2026 12:01:00 GMT":                    time.Minute, "Fri, 27 Nov 2026 12:01:30 GMT": 90 * time.Second,
	} {
		if got := RetryAfter(h, now); got != want {
			t.Errorf("RetryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestTLSConfig(t *testing.T) {
	c, err := TLS{}.Config("x")
	if err != nil || c.MinVersion != 0x0303 || c.InsecureSkipVerify || c.RootCAs != nil {
		t.Fatalf("default config %+v, %v", c, err)
	}
	bad := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := (TLS{CAFile: bad}).Config("splunk"); err == nil || !strings.Contains(err.Error(), "splunk: CA file") {
		t.Fatalf("bad CA file: %v", err)
	}
	if _, err := (TLS{CertFile: "c.pem"}).Config("elastic"); err == nil || !strings.Contains(err.Error(), "both CertFile and KeyFile") {
		t.Fatalf("cert without key: %v", err)
	}
}

func TestClean(t *testing.T) {
	long := strings.Repeat("é", MaxMessage) // 2 bytes each: the cut must land on a rune boundary
	cases := []struct{ in, want string }{
		{"  bad token hunter2\n", "bad token [x]"},
		{"a\x01b\tc", "a b c"},
		{"hunter2hunter2", "[x][x]"},
	}
	for _, c := range cases {
		if got := Clean(c.in, []string{"", "hunter2"}, "[x]"); got != c.want {
			t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	got := Clean(long, nil, "[x]")
	if !strings.HasSuffix(got, "…") || len(got) > MaxMessage+len("…") || !utf8.ValidString(got) {
		t.Errorf("long text cut to %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}

// The escaping itself is lib/jsonstr's, tested there; this checks the
// wrapper hands both string kinds to it.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "a\"b\\c\n\x01é", strings.Repeat("x\"", 9)} {
		want, _ := json.Marshal(s)
		want = bytes.ReplaceAll(want, []byte(`\u0026`), []byte("&"))
		if got := AppendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("string %q: got %s, want %s", s, got, want)
		}
		if got := AppendJSONString(nil, []byte(s)); !bytes.Equal(got, want) {
			t.Errorf("[]byte %q: got %s, want %s", s, got, want)
		}
	}
}

// TestAppendJSONStringExact: what the sinks write for each kind of byte
// (the record line inside an event), both string kinds.
func TestAppendJSONStringExact(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, `""`},
		{`abc`, `"abc"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x7f é 日本 😀", "\"\x7f é 日本 😀\""},
		{"\u2028\u2029<>&", "\"\u2028\u2029<>&\""},
		{`{"k":"v\n\u00e9"}`, `"{\"k\":\"v\\n\\u00e9\"}"`},
		{"\xff\xfe", "\"\xff\xfe\""}, // bytes kept as they are
	}
	for _, tt := range tests {
		if got := string(AppendJSONString(nil, tt.in)); got != tt.want {
			t.Errorf("AppendJSONString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if got := string(AppendJSONString([]byte("x"), []byte(tt.in))); got != "x"+tt.want {
			t.Errorf("AppendJSONString([]byte %q) = %s, want x%s", tt.in, got, tt.want)
		}
	}
	for _, s := range []string{"", "plain", `"`, `\`, "\x00\x1f\x7f", "\b\f\n\r\t", "é😀\u2028\u2029<>&", `{"a":"b\"c"}`} {
		got := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != s {
			t.Errorf("AppendJSONString(%q) = %s, decodes to %q (%v)", s, got, back, err)
		}
		if bytes.ContainsAny(got, "\n\r") {
			t.Errorf("AppendJSONString(%q) = %q holds a line break", s, got)
		}
	}
}

// FuzzAppendJSONString: for valid UTF-8, encoding/json decodes the output
// to exactly the input, and the output holds no line break (a bulk body
// is one document a line).
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", `{"seq":1,"record":{"a":"\u0000"}}`, "\x00\x1f\"\\\u2028😀", "\xed\xa0\x80",
		`plain`, `quote \" backslash \\ slash / newline \n tab \t`, `unicode é ü 日本 😀 \ud83d\ude00`,
		"line sep \u2028 para sep \u2029 <script>&amp;", `controls \u0000 \u001f \u007f \b \f`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendJSONString(nil, s)
		if !utf8.ValidString(s) {
			return // the line reader rejects invalid UTF-8 upstream
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil || got != s {
			t.Fatalf("round trip: %q -> %s -> %q (%v)", s, b, got, err)
		}
		if bytes.IndexByte(b, '\n') >= 0 {
			t.Fatalf("line break in %q", b)
		}
	})
}

func TestRoundTrip(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		w.WriteHeader(207)
		w.Write(bytes.Repeat([]byte("x"), 100))
	}))
	defer srv.Close()
	get := func(path string, timeout time.Duration) (Reply, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
		return RoundTrip(srv.Client(), req, 64, timeout)
	}
	r, err := get("/a", 5*time.Second)
	if err != nil || r.Status != 207 || len(r.Body) != 64 || !r.Truncated {
		t.Fatalf("long body: %d, %d bytes, truncated %v, %v", r.Status, len(r.Body), r.Truncated, err)
	}
	if _, err := get("/slow?token=s3cret", 50*time.Millisecond); err == nil ||
		err.Error() != "GET "+srv.URL+"/slow: no complete response within 50ms" {
		t.Fatalf("timeout: %v", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	req, _ := http.NewRequest("POST", dead+"/x?key=s3cret", nil)
	if _, err := RoundTrip(http.DefaultClient, req, 64, time.Second); err == nil ||
		!strings.HasPrefix(err.Error(), "POST "+dead+"/x: ") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("refused: %v", err)
	}
}

func TestExplain(t *testing.T) {
	for _, c := range []struct{ explain, text, want string }{
		{"bad token", `Invalid "token"`, `bad token: HEC said "Invalid \"token\""`},
		{"bad token", "", "bad token"},
		{"", "Server is busy", `"Server is busy"`},
		{"", "", ""},
	} {
		if got := Explain(c.explain, "HEC", c.text); got != c.want {
			t.Errorf("Explain(%q, %q) = %s, want %s", c.explain, c.text, got, c.want)
		}
	}
}

func TestNewRequest(t *testing.T) {
	req, err := NewRequest(context.Background(), "POST", "http://127.0.0.1:1/x", []byte("{}"), true, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	h := req.Header
	if h.Get("Content-Type") != "application/json" || h.Get("Content-Encoding") != "gzip" || h.Get("User-Agent") != "auditpipe" || req.ContentLength != 2 {
		t.Errorf("headers %v, length %d", h, req.ContentLength)
	}
	req, err = NewRequest(context.Background(), "GET", "http://127.0.0.1:1/health", nil, false, "application/json")
	if err != nil || req.Body != nil || req.Header.Get("Content-Type") != "" || req.Header.Get("Content-Encoding") != "" {
		t.Errorf("no body: %v, %v, %v", err, req.Body, req.Header)
	}
	if _, err := NewRequest(context.Background(), "GET", "http://[::1", nil, false, ""); err == nil {
		t.Error("a bad URL was accepted")
	}
}

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		raw        string
		allowQuery bool
		want, err  string
	}{
		{"https://siem.example.com:8088/x/#frag", false, "https://siem.example.com:8088/x/", ""},
		{"ftp://siem.example.com", false, "", "v: URL ftp://siem.example.com: scheme must be https (or http)"},
		{"https:///path", false, "", "v: URL https:///path has no host"},
		{"https://u:pw@siem.example.com", false, "", "v: URL https://u:xxxxx@siem.example.com carries credentials: put them elsewhere"},
		{"https://siem.example.com/p?key=s3cret", false, "", "v: URL https://siem.example.com/p has a query (not shown: it may hold a secret): give the base URL only"},
		{"https://siem.example.com/p?x=1", true, "https://siem.example.com/p?x=1", ""},
		{"http://[::1", false, "", "v: bad URL: "},
	} {
		u, err := ParseURL("v", c.raw, "put them elsewhere", c.allowQuery)
		switch {
		case c.err != "" && (err == nil || !strings.HasPrefix(err.Error(), c.err)):
			t.Errorf("%s: err %v, want %q", c.raw, err, c.err)
		case c.err == "" && (err != nil || u.String() != c.want):
			t.Errorf("%s: %v, %v; want %s", c.raw, u, err, c.want)
		}
	}
}

func TestRefreshNote(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, " (re-read after the refusal)"},
		{errors.New("open /run/secrets/hec: permission denied"), "; re-reading it failed: open /run/secrets/hec: permission denied"},
	} {
		if got := RefreshNote(c.err); got != c.want {
			t.Errorf("RefreshNote(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
