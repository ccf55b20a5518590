// Command reserialize rewrites record lines the way a SIEM export might:
// the keys of each "record" object come out in reverse order, so the bytes
// are no longer canonical (the hash still holds for the canonical form).
// scripts/bench.sh uses it to measure audit-verify's slow path.
package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/valyala/fastjson"
)

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	var p fastjson.Parser
	var buf []byte
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 1 {
			v, perr := p.ParseBytes(line)
			if perr != nil {
				fmt.Fprintln(os.Stderr, "reserialize:", perr)
				os.Exit(1)
			}
			buf = buf[:0]
			buf = append(buf, '{')
			first := true
			v.GetObject().Visit(func(k []byte, val *fastjson.Value) {
				if !first {
					buf = append(buf, ',')
				}
				first = false
				var a fastjson.Arena
				buf = a.NewString(string(k)).MarshalTo(buf)
				buf = append(buf, ':')
				if string(k) == "record" {
					buf = reversed(buf, val)
				} else {
					buf = val.MarshalTo(buf)
				}
			})
			buf = append(buf, '}', '\n')
			out.Write(buf)
		}
		if err != nil {
			return
		}
	}
}

func reversed(dst []byte, v *fastjson.Value) []byte {
	o := v.GetObject()
	type kv struct {
		k string
		v *fastjson.Value
	}
	var kvs []kv
	o.Visit(func(k []byte, v *fastjson.Value) { kvs = append(kvs, kv{string(k), v}) })
	dst = append(dst, '{')
	for i := len(kvs) - 1; i >= 0; i-- {
		if i != len(kvs)-1 {
			dst = append(dst, ',')
		}
		var a fastjson.Arena
		dst = a.NewString(kvs[i].k).MarshalTo(dst) // keys come unescaped from Visit
		dst = append(dst, ':')
		dst = kvs[i].v.MarshalTo(dst)
	}
	return append(dst, '}')
}
