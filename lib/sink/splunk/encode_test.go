package splunk

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func TestAppendTime(t *testing.T) {
	tests := []struct {
		ms   int64
		want string
	}{
		{1764244800123, "1764244800.123"},
		{1764244800005, "1764244800.005"},
		{1764244800050, "1764244800.050"},
		{1764244800000, "1764244800.000"},
		{1, "0.001"},
		{999, "0.999"},
		{1000, "1.000"},
	}
	for _, tt := range tests {
		if got := string(appendTime(nil, tt.ms)); got != tt.want {
			t.Errorf("appendTime(%d) = %s, want %s", tt.ms, got, tt.want)
		}
	}
}

func TestEncodeGzipRoundTrip(t *testing.T) {
	recs := records(50, 400)
	meta := appendMeta(nil, "h", "", DefaultSourcetype, "")
	plain, err := encode(meta, recs, false)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // pooled writers and buffers give the same bytes every time
		gz, err := encode(meta, recs, true)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(strings.NewReader(string(gz.Data)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(plain.Data) || gz.Raw != len(plain.Data) || !gz.Gzip {
			t.Fatalf("gzip body differs from the plain one")
		}
		if len(gz.Data)*3 > len(plain.Data) {
			t.Errorf("gzip %d bytes for %d: compression not working", len(gz.Data), len(plain.Data))
		}
	}
}

// BenchmarkEncode builds and gzips a HEC body of 1000 events, beside the
// floor any gzip shipper of these records pays: the same compressor over
// the bare record lines (no envelope, no JSON string around each line).
func BenchmarkEncode(b *testing.B) {
	recs := records(1000, 500)
	meta := appendMeta(nil, "host-1", "auditpipe", DefaultSourcetype, "declaragent_prod")
	var in int
	var lines []byte
	for _, r := range recs {
		in += len(r.Line)
		lines = append(append(lines, r.Line...), '\n')
	}
	b.Run("events", func(b *testing.B) {
		b.SetBytes(int64(in)) // MB/s of record lines
		b.ReportAllocs()
		var out int
		for b.Loop() {
			body, err := encode(meta, recs, true)
			if err != nil {
				b.Fatal(err)
			}
			out = len(body.Data)
			body.Release() // as Send does once the request is answered
		}
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(in)/float64(out), "ratio")
	})
	b.Run("gzip-lines-baseline", func(b *testing.B) {
		b.SetBytes(int64(in))
		var out bytes.Buffer
		zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		for b.Loop() {
			out.Reset()
			zw.Reset(&out)
			zw.Write(lines)
			zw.Close()
		}
		b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(in)/float64(out.Len()), "ratio")
	})
}

// TestEventChainField: the chain is an indexed field after recordHash when
// the record names it; without it the event is unchanged.
func TestEventChainField(t *testing.T) {
	r := records(1, 10)[0]
	plain := string(appendEvent(nil, nil, &r))
	if strings.Contains(plain, `"chain"`) {
		t.Fatalf("event without a chain names one: %s", plain)
	}
	r.Chain = "3f2a"
	got := string(appendEvent(nil, nil, &r))
	if want := strings.TrimSuffix(plain, "}}") + `,"chain":"3f2a"}}`; got != want {
		t.Errorf("event\n got %s\nwant %s", got, want)
	}
}
