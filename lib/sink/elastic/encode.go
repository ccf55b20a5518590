package elastic

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// The body is built by appending, without encoding/json: for each record
// an action line and a document line, each ending in "\n":
//
//	{"create":{"_index":"<index>","_id":"<id>"}}
//	{"@timestamp":"…","seq":42,"tenantId":"…","kind":"…","recordHash":"…","prevHash":"…","message":"<line>"}
//
// Every string is escaped by appendString, so neither the index nor the id
// nor any record byte can end a line or a JSON string early.

// appendActionPrefix returns `{"create":{"_index":"<index>","_id":`.
func appendActionPrefix(dst []byte, index string) []byte {
	dst = append(dst, `{"create":{"_index":`...)
	dst = appendString(dst, index)
	return append(dst, `,"_id":`...)
}

// appendAction appends the action line for a document with id, and its "\n".
func appendAction(dst, prefix, id []byte) []byte {
	dst = append(dst, prefix...)
	dst = appendString(dst, id)
	return append(dst, "}}\n"...)
}

// maxTimestampMS is the last millisecond of year 9999: RFC 3339 has four
// digits for the year.
const maxTimestampMS = 253402300799999

// appendDoc appends the "message"-shaped document for r, and its "\n".
func appendDoc(dst []byte, r *sink.Record) []byte {
	dst = append(dst, '{')
	if r.TS >= 0 && r.TS <= maxTimestampMS {
		dst = append(dst, `"@timestamp":"`...)
		dst = time.UnixMilli(r.TS).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
		dst = append(dst, `",`...)
	}
	dst = append(dst, `"seq":`...)
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = append(dst, `,"tenantId":`...)
	dst = appendString(dst, r.TenantID)
	dst = append(dst, `,"kind":`...)
	dst = appendString(dst, r.Kind)
	dst = append(dst, `,"recordHash":`...)
	dst = appendString(dst, r.Hash)
	dst = append(dst, `,"prevHash":`...)
	dst = appendString(dst, r.PrevHash)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, r.Line)
	return append(dst, "}\n"...)
}

// docID returns the _id of r under idField ("" if r has none).
func docID(idField string, r *sink.Record, buf []byte) []byte {
	if idField == IDSeq {
		return strconv.AppendInt(buf[:0], r.Seq, 10)
	}
	return append(buf[:0], r.Hash...)
}

// appendBulk appends the bulk body for records[i] for every i in sent.
// With indexFor, each action line names the record's own index, and prefix
// is not used.
func appendBulk(dst, prefix []byte, indexFor func(*sink.Record) string, shape, idField string, records []sink.Record, sent []int) []byte {
	var idBuf [64]byte
	for _, i := range sent {
		r := &records[i]
		id := docID(idField, r, idBuf[:0])
		if indexFor != nil {
			dst = appendActionPrefix(dst, indexFor(r))
			dst = appendString(dst, id)
			dst = append(dst, "}}\n"...)
		} else {
			dst = appendAction(dst, prefix, id)
		}
		if shape == ShapeLine {
			dst = append(dst, r.Line...)
			dst = append(dst, '\n')
		} else {
			dst = appendDoc(dst, r)
		}
	}
	return dst
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

// encode builds the request body for records[i], i in sent.
func (s *Sink) encode(records []sink.Record, sent []int) (body, error) {
	size := 0
	for _, i := range sent {
		size += len(records[i].Line) + len(s.action) + 320
	}
	if !s.cfg.Gzip {
		b := appendBulk(make([]byte, 0, size+size/16), s.action, s.cfg.IndexFor, s.cfg.DocShape, s.cfg.IDField, records, sent)
		return body{data: b, raw: len(b)}, nil
	}
	sp, _ := scratchPool.Get().(*[]byte)
	if sp == nil {
		sp = new([]byte)
	}
	raw := appendBulk((*sp)[:0], s.action, s.cfg.IndexFor, s.cfg.DocShape, s.cfg.IDField, records, sent)
	out := bytes.NewBuffer(make([]byte, 0, len(raw)/4+512))
	zw := gzipPool.Get().(*gzip.Writer)
	zw.Reset(out)
	_, err := zw.Write(raw)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	gzipPool.Put(zw)
	n := len(raw)
	if cap(raw) <= maxPooled {
		*sp = raw
		scratchPool.Put(sp)
	}
	if err != nil {
		return body{}, err
	}
	return body{data: out.Bytes(), raw: n, gzip: true}, nil
}
