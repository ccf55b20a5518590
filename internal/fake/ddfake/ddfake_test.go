package ddfake

import (
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func do(t *testing.T, s *Server, method, path, key, body string, gz bool) (int, string) {
	t.Helper()
	b := []byte(body)
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		b = buf.Bytes()
	}
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("DD-API-KEY", key)
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func TestProtocol(t *testing.T) {
	s := New(Options{APIKeys: []string{"k1"}, MaxBytes: 2000, MaxLogs: 3, TruncateAt: 10,
		Poison: func(l *Log) bool { return l.Message == "bad" }})
	defer s.Close()
	tests := []struct {
		name, method, path, key, body string
		gz                            bool
		status                        int
		answer                        string
		stored                        int // logs stored after this call
	}{
		{"validate good key", "GET", "/api/v1/validate", "k1", "", false, 200, `{"valid":true}`, 0},
		{"validate bad key", "GET", "/api/v1/validate", "k2", "", false, 403, `{"errors":["Forbidden"]}`, 0},
		{"no key", "POST", "/api/v2/logs", "", `[]`, false, 401, `{"errors":["Unauthorized"]}`, 0},
		{"bad key", "POST", "/api/v2/logs", "k2", `[]`, false, 403, `{"errors":["Forbidden"]}`, 0},
		{"array, gzip", "POST", "/api/v2/logs", "k1", `[{"message":"a","seq":"1"},{"message":"b"}]`, true, 202, `{}`, 2},
		{"single object", "POST", "/api/v2/logs", "k1", `{"message":"c"}`, false, 202, `{}`, 3},
		{"long message truncated, still 202", "POST", "/api/v2/logs", "k1", `[{"message":"0123456789abc"}]`, false, 202, `{}`, 4},
		{"poison: 400, logs before kept", "POST", "/api/v2/logs", "k1", `[{"message":"d"},{"message":"bad"},{"message":"e"}]`, false, 400,
			`{"errors":[{"detail":"log 1 was rejected","status":"400","title":"Bad Request"}]}`, 5},
		{"not an array", "POST", "/api/v2/logs", "k1", `"x"`, false, 400, "~not a JSON array", 5},
		{"too many logs", "POST", "/api/v2/logs", "k1", `[{},{},{},{}]`, false, 413, "~4 logs over the limit of 3", 5},
		{"too many bytes", "POST", "/api/v2/logs", "k1", `[{"message":"` + strings.Repeat("x", 2000) + `"}]`, true, 413, "~over the limit of 2000", 5},
		{"unknown path", "POST", "/v1/input", "k1", `[]`, false, 404, `{"errors":["Not Found"]}`, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, answer := do(t, s, tt.method, tt.path, tt.key, tt.body, tt.gz)
			ok := answer == tt.answer
			if sub, found := strings.CutPrefix(tt.answer, "~"); found {
				ok = strings.Contains(answer, sub)
			}
			if status != tt.status || !ok {
				t.Fatalf("%d %s\nwant %d %s", status, answer, tt.status, tt.answer)
			}
			if n := len(s.Logs()); n != tt.stored {
				t.Fatalf("%d logs stored, want %d", n, tt.stored)
			}
		})
	}
	logs := s.Logs()
	if got := strings.Join(s.Messages(), ","); got != "a,b,c,0123456789,d" {
		t.Errorf("messages %s", got)
	}
	if !logs[3].Truncated || logs[0].Truncated || logs[0].Attrs["seq"] != "1" || logs[0].Header["Content-Encoding"] != "gzip" || logs[0].Key != "k1" {
		t.Errorf("logs %+v", logs[:4])
	}
}

func TestFaultAndRotation(t *testing.T) {
	s := New(Options{APIKeys: []string{"k1"}, Fault: func(r *Request) Fault {
		if strings.Contains(string(r.Body), "slow down") {
			return Fault{Status: 429, RetryAfter: "5"}
		}
		return Fault{}
	}})
	defer s.Close()
	if status, _ := do(t, s, "POST", "/api/v2/logs", "k1", `[{"message":"slow down"}]`, true); status != 429 {
		t.Fatalf("fault: %d", status)
	}
	s.SetAPIKeys("k2")
	if status, _ := do(t, s, "POST", "/api/v2/logs", "k1", `[]`, false); status != 403 {
		t.Fatalf("old key after rotation: %d", status)
	}
	if status, _ := do(t, s, "POST", "/api/v2/logs", "k2", `[{"message":"x"}]`, false); status != 202 || len(s.Logs()) != 1 {
		t.Fatalf("new key: %d, %d logs", status, len(s.Logs()))
	}
	host, _, _ := net.SplitHostPort(s.Listener.Addr().String())
	if host != "127.0.0.1" {
		t.Fatalf("listening on %s", s.Listener.Addr())
	}
}
