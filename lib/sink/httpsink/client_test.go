package httpsink

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"

	"github.com/auditpipe/auditpipe/lib/sink"
)

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		status int
		on400  sink.Class
		want   sink.Class
	}{
		{408, sink.Config, sink.Retryable},
		{429, sink.Config, sink.Retryable},
		{500, sink.Config, sink.Retryable},
		{503, sink.BadRequest, sink.Retryable},
		{400, sink.BadRequest, sink.BadRequest},
		{400, sink.Config, sink.Config},
		{301, sink.BadRequest, sink.Config},
		{401, sink.BadRequest, sink.Config},
		{404, sink.BadRequest, sink.Config},
		{413, sink.BadRequest, sink.Config}, // TooLarge only for records: Client.TooLarge
		{418, sink.BadRequest, sink.Config},
	} {
		if got := Classify(tt.status, tt.on400); got != tt.want {
			t.Errorf("Classify(%d, %v) = %v, want %v", tt.status, tt.on400, got, tt.want)
		}
	}
}

// TestEncode: the gzip body, built a chunk at a time, decompresses to the
// plain one; Raw counts it; a nil part abandons the body.
func TestEncode(t *testing.T) {
	part := func(dst []byte, i int) []byte {
		return fmt.Appendf(dst, "%d:%s\n", i, bytes.Repeat([]byte{'x'}, i%700))
	}
	for _, n := range []int{1, 2, 1000} {
		plain, err := Encode(false, 0, n, part)
		if err != nil || plain.Gzip || plain.Raw != len(plain.Data) {
			t.Fatalf("n=%d plain: %v %v %d/%d", n, err, plain.Gzip, plain.Raw, len(plain.Data))
		}
		gz, err := Encode(true, 0, n, part)
		if err != nil || !gz.Gzip || gz.Raw != len(plain.Data) {
			t.Fatalf("n=%d gzip: %v %v %d, want raw %d", n, err, gz.Gzip, gz.Raw, len(plain.Data))
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz.Data))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, plain.Data) {
			t.Fatalf("n=%d: gzip body decompresses to %d bytes (%v), want the %d plain ones", n, len(got), err, len(plain.Data))
		}
	}
	stop := func(dst []byte, i int) []byte {
		if i == 500 {
			return nil
		}
		return part(dst, i)
	}
	for _, gz := range []bool{false, true} {
		if b, err := Encode(gz, 0, 1000, stop); err != nil || b.Data != nil {
			t.Errorf("gzip %v: a stopped body has %d bytes (%v), want none", gz, len(b.Data), err)
		}
	}
}
