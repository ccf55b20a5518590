package splunk

import (
	"strconv"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// The body is built by appending, without encoding/json: each event is
//
//	{"time":1764244800.123,"host":"h","source":"s","sourcetype":"st","index":"i",
//	 "event":"<the record line as a JSON string>",
//	 "fields":{"seq":"42","tenantId":"acme","kind":"tool_call","recordHash":"…"[,"chain":"…"]}}
//
// on one line, events separated by "\n". meta holds the constant middle
// part (host … index) of every event, encoded once in New.

// appendMeta returns `"host":…,"source":…,"sourcetype":…,"index":…,` with
// empty values left out, ending in a comma.
func appendMeta(dst []byte, host, source, sourcetype, index string) []byte {
	return httpsink.AppendFields(dst, [2]string{"host", host}, [2]string{"source", source},
		[2]string{"sourcetype", sourcetype}, [2]string{"index", index})
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
		dst = httpsink.AppendJSONString(dst, index)
		dst = append(dst, ',')
	}
	dst = append(dst, `"event":`...)
	dst = httpsink.AppendJSONString(dst, r.Line)
	dst = append(dst, `,"fields":{"seq":"`...)
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = append(dst, '"')
	if r.TenantID != "" {
		dst = append(dst, `,"tenantId":`...)
		dst = httpsink.AppendJSONString(dst, r.TenantID)
	}
	if r.Kind != "" {
		dst = append(dst, `,"kind":`...)
		dst = httpsink.AppendJSONString(dst, r.Kind)
	}
	if r.Hash != "" {
		dst = append(dst, `,"recordHash":`...)
		dst = httpsink.AppendJSONString(dst, r.Hash)
	}
	dst = httpsink.AppendChain(dst, r) // an indexed field, as seq: the chain check groups by it
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

// encode builds the request body for records.
func encode(meta []byte, records []sink.Record, gz bool) (httpsink.Body, error) {
	return encodeRouted(meta, nil, records, gz)
}

// encodeRouted builds the request body for records, routed by indexFor if
// it is set.
func encodeRouted(meta []byte, indexFor func(*sink.Record) string, records []sink.Record, gz bool) (httpsink.Body, error) {
	size := 0
	for i := range records {
		size += len(records[i].Line) + len(meta) + 256
	}
	return httpsink.Encode(gz, size, len(records), func(dst []byte, i int) []byte {
		return appendNth(dst, meta, indexFor, records, i)
	})
}
