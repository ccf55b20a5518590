package datadog

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"

	"github.com/klauspost/compress/gzip"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// The body is built by appending, without encoding/json: a JSON array of
//
//	{"ddsource":"…","ddtags":"…","hostname":"…","service":"…","message":"<line>",
//	 "timestamp":1764244800123,"seq":"42","tenantId":"…","kind":"…","recordHash":"…","prevHash":"…"}
//
// separated by ",". meta holds the constant first part of every log,
// encoded once in New.

// appendMeta returns `"ddsource":…,"ddtags":…,"hostname":…,"service":…,`
// with empty values left out, ending in a comma.
func appendMeta(dst []byte, source, tags, hostname, service string) []byte {
	for _, kv := range [...][2]string{
		{"ddsource", source}, {"ddtags", tags}, {"hostname", hostname}, {"service", service},
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

// appendLog appends the log object for r.
func appendLog(dst, meta []byte, r *sink.Record) []byte {
	return appendTaggedLog(dst, meta, "", r)
}

// appendTaggedLog appends the log object for r with its own ddtags (none
// if tags is "": meta's, if any).
func appendTaggedLog(dst, meta []byte, tags string, r *sink.Record) []byte {
	dst = append(dst, '{')
	dst = append(dst, meta...)
	if tags != "" {
		dst = append(dst, `"ddtags":`...)
		dst = appendString(dst, tags)
		dst = append(dst, ',')
	}
	dst = append(dst, `"message":`...)
	dst = appendString(dst, r.Line)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.TS, 10)
	dst = append(dst, `,"seq":"`...)
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = append(dst, `","tenantId":`...)
	dst = appendString(dst, r.TenantID)
	dst = append(dst, `,"kind":`...)
	dst = appendString(dst, r.Kind)
	dst = append(dst, `,"recordHash":`...)
	dst = appendString(dst, r.Hash)
	dst = append(dst, `,"prevHash":`...)
	dst = appendString(dst, r.PrevHash)
	return append(dst, '}')
}

// oversize is the Reason of a record whose log is over MaxLogBytes.
func oversize(n int) string {
	return sink.NotSentReason(fmt.Sprintf("record is %d bytes, over Datadog's 1 MB per-log limit (Datadog would truncate it and break the chain)", n))
}

// appendLogs appends the JSON array of the logs of records, leaving out
// (and marking Poison in res) any log over MaxLogBytes. It stops early,
// with tooLarge set, once the array would hold more than MaxLogs logs or
// MaxRequestBytes bytes. sent lists the records in the array.
func appendLogs(dst, meta []byte, tagsFor func(*sink.Record) string, records []sink.Record, res sink.Result) (out []byte, sent []int, tooLarge bool) {
	start := len(dst)
	dst = append(dst, '[')
	sent = make([]int, 0, len(records))
	for i := range records {
		mark := len(dst)
		if len(sent) > 0 {
			dst = append(dst, ',')
		}
		logStart := len(dst)
		tags := ""
		if tagsFor != nil {
			tags = tagsFor(&records[i])
		}
		dst = appendTaggedLog(dst, meta, tags, &records[i])
		if n := len(dst) - logStart; n > MaxLogBytes {
			res.Status[i], res.Reason[i] = sink.Poison, oversize(n)
			dst = dst[:mark]
			continue
		}
		sent = append(sent, i)
		if len(sent) > MaxLogs || len(dst)-start+1 > MaxRequestBytes {
			return dst, sent, true
		}
	}
	return append(dst, ']'), sent, false
}

// escape[c] is 0 for a byte written as it is, 'u' for \u00xx, and the
// letter of a short escape otherwise.

// appendString appends s as a JSON string. It escapes `"`, `\` and bytes
// below 0x20, and keeps every other byte as it is (non-ASCII, U+2028,
// '<'; invalid UTF-8 is rejected upstream by the line reader), so the
// decoded string is byte for byte s.
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

// maxPooled is the largest scratch buffer kept for reuse.
const maxPooled = 16 << 20

// body is an encoded request body.
type body struct {
	data []byte // what is sent
	raw  int    // uncompressed size
	gzip bool
}

// encode builds the request body for records, marking oversize ones
// Poison in res. With tooLarge set, body is empty: nothing may be sent.
func (s *Sink) encode(records []sink.Record, res sink.Result) (b body, sent []int, tooLarge bool, err error) {
	if !s.cfg.Gzip {
		size := 2
		for i := range records {
			size += len(records[i].Line) + len(s.meta) + 256
		}
		raw, sent, tooLarge := appendLogs(make([]byte, 0, min(size+size/16, MaxRequestBytes+MaxLogBytes)), s.meta, s.cfg.TagsFor, records, res)
		if tooLarge {
			return body{raw: len(raw)}, sent, true, nil
		}
		return body{data: raw, raw: len(raw)}, sent, false, nil
	}
	sp, _ := scratchPool.Get().(*[]byte)
	if sp == nil {
		sp = new([]byte)
	}
	raw, sent, tooLarge := appendLogs((*sp)[:0], s.meta, s.cfg.TagsFor, records, res)
	defer func() {
		if cap(raw) <= maxPooled {
			*sp = raw[:0]
			scratchPool.Put(sp)
		}
	}()
	if tooLarge {
		return body{raw: len(raw)}, sent, true, nil
	}
	out := bytes.NewBuffer(make([]byte, 0, len(raw)/4+512))
	zw := gzipPool.Get().(*gzip.Writer)
	zw.Reset(out)
	_, err = zw.Write(raw)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	gzipPool.Put(zw)
	if err != nil {
		return body{}, nil, false, err
	}
	return body{data: out.Bytes(), raw: len(raw), gzip: true}, sent, false, nil
}
