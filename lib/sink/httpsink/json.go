package httpsink

import (
	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/sink"
)

var parserPool fastjson.ParserPool

// AnswerText is the text of a SIEM's answer: what text finds in its JSON
// object (ok true), else the body as it is (a proxy's HTML page).
func AnswerText(body []byte, text func(*fastjson.Value) (string, bool)) string {
	p := parserPool.Get()
	defer parserPool.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil || v.Type() != fastjson.TypeObject {
		return string(body)
	}
	if t, ok := text(v); ok {
		return t
	}
	return string(body)
}

// AppendFields appends `"name":"value",` for each {name, value} pair whose
// value is not empty: the constant part of a sink's event, encoded once.
func AppendFields(dst []byte, fields ...[2]string) []byte {
	for _, kv := range fields {
		if kv[1] == "" {
			continue
		}
		dst = append(dst, '"')
		dst = append(dst, kv[0]...)
		dst = append(dst, `":`...)
		dst = AppendJSONString(dst, kv[1])
		dst = append(dst, ',')
	}
	return dst
}

// AppendChainFields appends `,"tenantId":…,"kind":…,"recordHash":…,"prevHash":…`
// of r, every one even if empty: what a search needs to find a record and
// its place in the chain without parsing the line. Then `,"chain":…` when
// r names its chain (the Kafka fleet: many chains in one index, and the
// chain check groups by it); an event of an unnamed chain has no "chain",
// byte for byte the event of before.
func AppendChainFields(dst []byte, r *sink.Record) []byte {
	dst = append(dst, `,"tenantId":`...)
	dst = AppendJSONString(dst, r.TenantID)
	dst = append(dst, `,"kind":`...)
	dst = AppendJSONString(dst, r.Kind)
	dst = append(dst, `,"recordHash":`...)
	dst = AppendJSONString(dst, r.Hash)
	dst = append(dst, `,"prevHash":`...)
	dst = AppendJSONString(dst, r.PrevHash)
	return AppendChain(dst, r)
}

// AppendChain appends `,"chain":"<id>"` if r names its chain, else nothing.
func AppendChain(dst []byte, r *sink.Record) []byte {
	if r.Chain == "" {
		return dst
	}
	dst = append(dst, `,"chain":`...)
	return AppendJSONString(dst, r.Chain)
}
