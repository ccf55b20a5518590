package fakehttp

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestStart(t *testing.T) {
	for _, tls := range []bool{false, true} {
		s := Start("test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), tls)
		if !strings.HasPrefix(s.URL, map[bool]string{false: "http://127.0.0.1:", true: "https://127.0.0.1:"}[tls]) {
			t.Errorf("tls %v: URL %s", tls, s.URL)
		}
		resp, err := s.Client().Get(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Errorf("tls %v: body %q", tls, b)
		}
		s.Close()
	}
}
