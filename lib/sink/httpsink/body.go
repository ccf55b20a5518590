package httpsink

import (
	"bytes"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// Body is an encoded request body.
type Body struct {
	Data []byte // what is sent
	Raw  int    // uncompressed size
	Gzip bool
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

// Encode builds a body of n parts, part(dst, i) appending the i-th; size
// estimates the uncompressed body. With gz the body is gzip-compressed
// (level 1) as it is built, a chunk of about 64 KiB at a time, so each
// chunk is still in cache when the compressor reads it. A part that
// returns nil stops the build: the body is abandoned (Data nil).
func Encode(gz bool, size, n int, part func(dst []byte, i int) []byte) (Body, error) {
	if !gz {
		b := make([]byte, 0, size+size/16)
		for i := 0; i < n; i++ {
			if b = part(b, i); b == nil {
				return Body{}, nil
			}
		}
		return Body{Data: b, Raw: len(b)}, nil
	}
	sp, _ := scratchPool.Get().(*[]byte)
	if sp == nil {
		sp = new([]byte)
	}
	chunk := (*sp)[:0]
	if chunk == nil {
		chunk = make([]byte, 0, chunkSize+chunkSize/4)
	}
	out := bytes.NewBuffer(make([]byte, 0, size/5+512))
	zw := gzipPool.Get().(*gzip.Writer)
	zw.Reset(out)
	raw := 0
	var err error
	stopped := false
	for i := 0; i < n; i++ {
		next := part(chunk, i)
		if next == nil {
			stopped = true
			break
		}
		chunk = next
		if len(chunk) >= chunkSize || i == n-1 {
			raw += len(chunk)
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
		*sp = chunk[:0]
		scratchPool.Put(sp)
	}
	if err != nil || stopped {
		return Body{}, err
	}
	return Body{Data: out.Bytes(), Raw: raw, Gzip: true}, nil
}
