package splunk

import (
	"bytes"
	"strconv"
	"sync"

	"github.com/klauspost/compress/gzip"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// The body is built by appending, without encoding/json: each event is
//
//	{"time":1764244800.123,"host":"h","source":"s","sourcetype":"st","index":"i",
//	 "event":"<the record line as a JSON string>",
//	 "fields":{"seq":"42","tenantId":"acme","kind":"tool_call","recordHash":"…"}}
//
// on one line, events separated by "\n". meta holds the constant middle
// part (host … index) of every event, encoded once in New.

// appendMeta returns `"host":…,"source":…,"sourcetype":…,"index":…,` with
// empty values left out, ending in a comma.
func appendMeta(dst []byte, host, source, sourcetype, index string) []byte {
	for _, kv := range [...][2]string{
		{"host", host}, {"source", source}, {"sourcetype", sourcetype}, {"index", index},
	} {
		if kv[1] == "" {
			continue
		}
		dst = append(dst, '"')
		dst = append(dst, kv[0]...)
		dst = append(dst, `":`...)
		dst = appendString(dst, kv[1])
		dst = append(dst, ',')
	}
	return dst
}

// appendEvent appends the HEC event for r.
func appendEvent(dst, meta []byte, r *sink.Record) []byte {
	return appendRoutedEvent(dst, meta, "", r)
}

// appendRoutedEvent appends the HEC event for r with its own index (none
// if index is "": meta's, or the token's default).
func appendRoutedEvent(dst, meta []byte, index string, r *sink.Record) []byte {
	dst = append(dst, '{')
	if r.TS > 0 { // no time: HEC stamps the arrival time
		dst = append(dst, `"time":`...)
		dst = appendTime(dst, r.TS)
		dst = append(dst, ',')
	}
	dst = append(dst, meta...)
	if index != "" {
		dst = append(dst, `"index":`...)
		dst = appendString(dst, index)
		dst = append(dst, ',')
	}
	dst = append(dst, `"event":`...)
	dst = appendString(dst, r.Line)
	dst = append(dst, `,"fields":{"seq":"`...)
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = append(dst, '"')
	if r.TenantID != "" {
		dst = append(dst, `,"tenantId":`...)
		dst = appendString(dst, r.TenantID)
	}
	if r.Kind != "" {
		dst = append(dst, `,"kind":`...)
		dst = appendString(dst, r.Kind)
	}
	if r.Hash != "" {
		dst = append(dst, `,"recordHash":`...)
		dst = appendString(dst, r.Hash)
	}
	return append(dst, "}}"...)
}

// appendEvents appends the events for records, separated by "\n", each
// with the index indexFor gives it if indexFor is set.
func appendEvents(dst, meta []byte, indexFor func(*sink.Record) string, records []sink.Record) []byte {
	for i := range records {
		dst = appendNth(dst, meta, indexFor, records, i)
	}
	return dst
}

// appendNth appends the event for records[i], after a "\n" unless it is
// the first.
func appendNth(dst, meta []byte, indexFor func(*sink.Record) string, records []sink.Record, i int) []byte {
	if i > 0 {
		dst = append(dst, '\n')
	}
	index := ""
	if indexFor != nil {
		index = indexFor(&records[i])
	}
	return appendRoutedEvent(dst, meta, index, &records[i])
}

// appendTime appends ms milliseconds as seconds with exactly three
// decimals: 1764244800123 -> 1764244800.123. ms must be positive.
func appendTime(dst []byte, ms int64) []byte {
	dst = strconv.AppendInt(dst, ms/1000, 10)
	f := ms % 1000
	return append(dst, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}

// escape[c] is 0 for a byte written as it is, 'u' for \u00xx, and the
// letter of a short escape otherwise.

// appendString appends s as a JSON string. It escapes `"`, `\` and bytes
// below 0x20, and keeps every other byte as it is (non-ASCII, U+2028,
// '<', and also invalid UTF-8, which the line reader rejects upstream), so
// the decoded string is byte for byte s.
func appendString[T string | []byte](dst []byte, s T) []byte {
	return httpsink.AppendJSONString(dst, s)
}

// Pools. A scratch buffer holds the uncompressed body only while it is
// compressed; the body handed to net/http is always freshly allocated,
// because the transport may still read a request body after Do returns.
var (
	scratchPool sync.Pool // *[]byte
	gzipPool    = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return w
	}}
)

// chunkSize is how much of a body is built before it is compressed.
const chunkSize = 64 << 10

// maxPooled is the largest scratch buffer kept for reuse.
const maxPooled = 16 << 20

// body is an encoded request body.
type body struct {
	data []byte // what is sent
	raw  int    // uncompressed size
	gzip bool
}

// encode builds the request body for records.
func encode(meta []byte, records []sink.Record, gz bool) (body, error) {
	return encodeRouted(meta, nil, records, gz)
}

// encodeRouted builds the request body for records, routed by indexFor if
// it is set.
func encodeRouted(meta []byte, indexFor func(*sink.Record) string, records []sink.Record, gz bool) (body, error) {
	size := 0
	for i := range records {
		size += len(records[i].Line) + len(meta) + 256
	}
	if !gz {
		b := appendEvents(make([]byte, 0, size+size/16), meta, indexFor, records)
		return body{data: b, raw: len(b)}, nil
	}
	// The events are compressed as they are built, a chunk at a time, so
	// each chunk is still in cache when the compressor reads it.
	sp, _ := scratchPool.Get().(*[]byte)
	if sp == nil {
		sp = new([]byte)
	}
	chunk := (*sp)[:0]
	out := bytes.NewBuffer(make([]byte, 0, size/5+512))
	zw := gzipPool.Get().(*gzip.Writer)
	zw.Reset(out)
	n := 0
	var err error
	for i := range records {
		chunk = appendNth(chunk, meta, indexFor, records, i)
		if len(chunk) >= chunkSize || i == len(records)-1 {
			n += len(chunk)
			if _, werr := zw.Write(chunk); err == nil {
				err = werr
			}
			chunk = chunk[:0]
		}
	}
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	gzipPool.Put(zw)
	if cap(chunk) <= maxPooled {
		*sp = chunk
		scratchPool.Put(sp)
	}
	if err != nil {
		return body{}, err
	}
	return body{data: out.Bytes(), raw: n, gzip: true}, nil
}
