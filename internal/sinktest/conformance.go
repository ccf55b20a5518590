package sinktest

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// Target is one sink and its fake, for Conformance.
type Target struct {
	// Reach is what Check's error says when the SIEM cannot be reached
	// ("cannot reach HEC"); "" for a sink with no network (file), whose
	// network cases are skipped.
	Reach string
	// Secrets are the credentials the sink sends: no error may hold one.
	Secrets []string
	// Closed is the sink's ErrClosed (nil: Send after Close need only
	// fail).
	Closed error
	// Start starts the fake (its cleanup registered on t).
	Start func(t *testing.T, o FakeOptions) Fake
	// New returns the sink writing to url with the TLS options tls and the
	// target's defaults otherwise (gzip, the credential the fake takes);
	// its Close registered on t.
	New func(t *testing.T, url string, tls httpsink.TLS) sink.Sink
}

// FakeOptions says how the fake must answer.
type FakeOptions struct {
	TLS  bool // HTTPS with a self-signed certificate
	Slow bool // every answer delayed by seconds
}

// Fake is a started fake.
type Fake struct {
	URL    string
	Cert   *x509.Certificate // the TLS fake's certificate
	Stored func() int        // records stored so far
	Close  func()            // stops it early (a server that went away)
	Reset  func()            // forgets what it stored (nil: nothing to forget)
}

// Conformance runs the cases every sink must pass, whatever its SIEM,
// against tg: Send then Close, concurrent Sends; for network sinks also a cancelled
// request, a SIEM that is gone, and TLS (refused without the CA, accepted
// with CAFile or InsecureSkipVerify).
func Conformance(t *testing.T, tg Target) {
	recs := func() []sink.Record { return Records(2, 100, 1764244800123, "") }
	t.Run("close", func(t *testing.T) {
		f := tg.Start(t, FakeOptions{})
		s := tg.New(t, f.URL, httpsink.TLS{})
		if res, err := s.Send(context.Background(), recs()); err != nil || !slices.Equal(res.Status, Repeat(sink.Delivered, 2)) {
			t.Fatalf("Send: %v %v", res.Status, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		res, err := s.Send(context.Background(), recs())
		if err == nil || (tg.Closed != nil && !errors.Is(err, tg.Closed)) || slices.Contains(res.Status, sink.Delivered) {
			t.Errorf("Send after Close: %v %v, want %v", res.Status, err, tg.Closed)
		}
		if n := f.Stored(); n != 2 {
			t.Errorf("%d records stored, want the 2 sent before Close", n)
		}
		if tg.Closed != nil {
			if err := s.Check(context.Background()); !errors.Is(err, tg.Closed) {
				t.Errorf("Check after Close: %v", err)
			}
		}
	})
	t.Run("concurrent sends", func(t *testing.T) {
		f := tg.Start(t, FakeOptions{})
		s := tg.New(t, f.URL, httpsink.TLS{})
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			recs := Records(50, 300, 1764244800000+int64(g)*1000, fmt.Sprintf("%064x", g))
			wg.Go(func() {
				res, err := s.Send(context.Background(), recs)
				if err == nil && !slices.Equal(res.Status, Repeat(sink.Delivered, 50)) {
					err = fmt.Errorf("status %v", res.Status)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := f.Stored(); n != 400 {
			t.Fatalf("%d records stored, want 400", n)
		}
	})
	if tg.Reach == "" {
		return
	}
	t.Run("cancelled", func(t *testing.T) {
		f := tg.Start(t, FakeOptions{Slow: true})
		s := tg.New(t, f.URL, httpsink.TLS{})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := s.Send(ctx, recs()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("cancelled Send: %v, want the context's own error", err)
		}
	})
	t.Run("SIEM gone", func(t *testing.T) {
		f := tg.Start(t, FakeOptions{})
		f.Close()
		s := tg.New(t, f.URL, httpsink.TLS{})
		res, err := s.Send(context.Background(), recs())
		tg.noSecret(t, err)
		var se *sink.Error
		if !errors.As(err, &se) || se.Class != sink.Retryable || se.HTTPStatus != 0 {
			t.Fatalf("err = %v", err)
		}
		if !slices.Equal(res.Status, Repeat(sink.Pending, 2)) {
			t.Fatalf("status %v", res.Status)
		}
		err = s.Check(context.Background())
		if tg.noSecret(t, err); !errors.As(err, &se) || se.Class != sink.Retryable || !strings.Contains(err.Error(), tg.Reach) {
			t.Fatalf("Check = %v, want Retryable, %q", err, tg.Reach)
		}
	})
	t.Run("TLS", func(t *testing.T) {
		f := tg.Start(t, FakeOptions{TLS: true})
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Cert.Raw}), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name    string
			tls     httpsink.TLS
			wantErr string
		}{
			{name: "self-signed refused without CAFile", wantErr: "certificate"},
			{name: "accepted with CAFile", tls: httpsink.TLS{CAFile: ca}},
			{name: "accepted with InsecureSkipVerify", tls: httpsink.TLS{InsecureSkipVerify: true}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if f.Reset != nil {
					f.Reset()
				}
				before := f.Stored()
				s := tg.New(t, f.URL, tt.tls)
				res, err := s.Send(context.Background(), recs())
				cerr := s.Check(context.Background())
				tg.noSecret(t, err)
				tg.noSecret(t, cerr)
				if tt.wantErr == "" {
					if err != nil || cerr != nil {
						t.Fatalf("Send: %v; Check: %v", err, cerr)
					}
					if !slices.Equal(res.Status, Repeat(sink.Delivered, 2)) {
						t.Fatalf("status %v", res.Status)
					}
					return
				}
				var se *sink.Error
				if !errors.As(err, &se) || se.Class != sink.Retryable || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Send err = %v", err)
				}
				if cerr == nil || !strings.Contains(cerr.Error(), tt.wantErr) || !strings.Contains(cerr.Error(), tg.Reach) {
					t.Fatalf("Check err = %v", cerr)
				}
				if n := f.Stored() - before; n != 0 {
					t.Fatalf("%d records crossed an unverified connection", n)
				}
			})
		}
	})
}

// noSecret fails if err holds one of the target's secrets.
func (tg Target) noSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, k := range tg.Secrets {
		if k != "" && strings.Contains(err.Error(), k) {
			t.Fatalf("error leaks a secret: %v", err)
		}
	}
}

// Repeat is n times s.
func Repeat(s sink.Status, n int) []sink.Status { return slices.Repeat([]sink.Status{s}, n) }

// Failure is an expected *sink.Error (Code -1: no vendor code).
type Failure struct {
	Class      sink.Class
	Status     int
	RetryAfter int // seconds; -1: any
	Contains   []string
}

// CheckErr compares err with an expected *sink.Error (w nil: no error).
// A message is at most the SIEM's text cut to httpsink.MaxMessage and
// what the sink says around it.
func CheckErr(t *testing.T, err error, w *Failure) {
	t.Helper()
	if w == nil {
		if err != nil {
			t.Fatalf("err = %v", err)
		}
		return
	}
	var se *sink.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want *sink.Error", err, err)
	}
	if se.Class != w.Class || se.HTTPStatus != w.Status || se.Code != -1 {
		t.Errorf("err = %v: class %v status %d code %d, want %v %d", err, se.Class, se.HTTPStatus, se.Code, w.Class, w.Status)
	}
	if w.RetryAfter >= 0 {
		want := time.Duration(w.RetryAfter) * time.Second
		if d := se.RetryAfter - want; d < -2*time.Second || d > 0 || (want == 0) != (se.RetryAfter == 0) {
			t.Errorf("RetryAfter = %v, want %v", se.RetryAfter, want)
		}
	}
	for _, c := range w.Contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("err %q does not contain %q", err, c)
		}
	}
	if len(se.Msg) > httpsink.MaxMessage+400 {
		t.Errorf("message of %d bytes is not truncated", len(se.Msg))
	}
}
