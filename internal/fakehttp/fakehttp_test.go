package fakehttp

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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

func TestGunzipAndWait(t *testing.T) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(strings.Repeat("a", 100)))
	zw.Close()
	if out, err := Gunzip(b.Bytes(), 1000); err != nil || len(out) != 100 {
		t.Fatalf("Gunzip: %d bytes, %v", len(out), err)
	}
	if out, _ := Gunzip(b.Bytes(), 10); len(out) != 10 {
		t.Fatalf("Gunzip with a limit of 10 read %d bytes", len(out))
	}
	if _, err := Gunzip([]byte("not gzip"), 10); err == nil {
		t.Fatal("Gunzip accepted a non-gzip body")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	if !Wait(r, time.Millisecond) {
		t.Fatal("Wait gave up with the client still there")
	}
	cancel()
	if Wait(r, time.Hour) {
		t.Fatal("Wait waited for a client that had gone")
	}
}
