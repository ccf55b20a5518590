package datadog

import (
	"fmt"
	"strconv"

	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// The body is built by appending, without encoding/json: a JSON array of
//
//	{"ddsource":"…","ddtags":"…","hostname":"…","service":"…","message":"<line>",
//	 "timestamp":1764244800123,"seq":"42","tenantId":"…","kind":"…","recordHash":"…","prevHash":"…"[,"chain":"…"]}
//
// separated by ",". meta holds the constant first part of every log,
// encoded once in New.

// appendMeta returns `"ddsource":…,"ddtags":…,"hostname":…,"service":…,`
// with empty values left out, ending in a comma.
func appendMeta(dst []byte, source, tags, hostname, service string) []byte {
	return httpsink.AppendFields(dst, [2]string{"ddsource", source}, [2]string{"ddtags", tags},
		[2]string{"hostname", hostname}, [2]string{"service", service})
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
		dst = httpsink.AppendJSONString(dst, tags)
		dst = append(dst, ',')
	}
	dst = append(dst, `"message":`...)
	dst = httpsink.AppendJSONString(dst, r.Line)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.TS, 10)
	dst = append(dst, `,"seq":"`...)
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = append(dst, '"')
	dst = httpsink.AppendChainFields(dst, r)
	return append(dst, '}')
}

// oversize is the Reason of a record whose log is over MaxLogBytes.
func oversize(n int) string {
	return sink.NotSentReason(fmt.Sprintf("record is %d bytes, over Datadog's 1 MB per-log limit (Datadog would truncate it and break the chain)", n))
}

// encode builds the request body for records, leaving out (and marking
// Poison in res) any log over MaxLogBytes. It stops, with tooLarge set and
// no body (Raw is the array's size when it stopped), once the array would
// hold more than MaxLogs logs or MaxRequestBytes bytes. sent lists the
// records in the array.
func (s *Sink) encode(records []sink.Record, res sink.Result) (b httpsink.Body, sent []int, tooLarge bool, err error) {
	size := 2
	for i := range records {
		size += len(records[i].Line) + len(s.meta) + 256
	}
	size = min(size, (MaxRequestBytes+MaxLogBytes)*16/17)
	sent = make([]int, 0, len(records))
	array := 0 // bytes of the array so far, without its ']'
	b, err = httpsink.Encode(s.cfg.Gzip, size, len(records), func(dst []byte, i int) []byte {
		start := len(dst)
		if i == 0 {
			dst = append(dst, '[')
		}
		mark := len(dst)
		if len(sent) > 0 {
			dst = append(dst, ',')
		}
		logStart := len(dst)
		tags := ""
		if s.cfg.TagsFor != nil {
			tags = s.cfg.TagsFor(&records[i])
		}
		dst = appendTaggedLog(dst, s.meta, tags, &records[i])
		if n := len(dst) - logStart; n > MaxLogBytes {
			res.Status[i], res.Reason[i] = sink.Poison, oversize(n)
			dst = dst[:mark]
		} else {
			sent = append(sent, i)
		}
		array += len(dst) - start
		if len(sent) > MaxLogs || array+1 > MaxRequestBytes {
			tooLarge = true
			return nil
		}
		if i == len(records)-1 {
			dst = append(dst, ']')
		}
		return dst
	})
	if tooLarge {
		return httpsink.Body{Raw: array}, sent, true, nil
	}
	return b, sent, false, err
}
