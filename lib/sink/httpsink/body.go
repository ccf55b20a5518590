package httpsink

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
)

// Body is an encoded request body.
type Body struct {
	Data []byte // what is sent
	Raw  int    // uncompressed size
	Gzip bool

	buf *bodyBuf // Data's pooled memory (Encode), nil: Data is the caller's
	gen uint64   // which body of buf's this is
}

// Release gives the memory of a body Encode made back for a later body,
// once no request reads it any more: net/http may still read a request
// body after Client.Do returns (http.RoundTripper: the transport closes
// it, perhaps later, from another goroutine), so the memory is pooled
// only when every request body made of it was closed, as well as after
// Release. Call it once the body's requests are done (Client.Do
// returned) and neither b nor b.Data is used again; a copy of b released
// again is a no-op. A body not released is left to the garbage collector.
func (b *Body) Release() {
	if p := b.buf; p != nil {
		b.buf, b.Data = nil, nil
		if p.owner.CompareAndSwap(b.gen, 0) {
			p.unref()
		}
	}
}

// bodyBuf is the pooled memory of a body: refs counts its owner (until
// Release) and each request body reading it that is not closed yet.
type bodyBuf struct {
	b     []byte
	refs  atomic.Int32
	owner atomic.Uint64 // gen while the owner's reference is held (Release not called), else 0
	gen   atomic.Uint64 // which body the memory is (raised each time it is handed out)
}

// errBodyReleased is a read of a request body whose memory was released:
// it cannot happen while the rule of Release is kept.
var errBodyReleased = errors.New("request body read after its memory was released")

// tryRef takes a reference to body gen unless its memory was released
// (refs 0, or handed out again as another body).
func (p *bodyBuf) tryRef(gen uint64) bool {
	for {
		n := p.refs.Load()
		if n <= 0 {
			return false
		}
		if p.refs.CompareAndSwap(n, n+1) {
			break
		}
	}
	if p.gen.Load() != gen {
		p.unref()
		return false
	}
	return true
}

// unref drops a reference; the last one pools the memory.
func (p *bodyBuf) unref() {
	if p.refs.Add(-1) != 0 {
		return
	}
	if poisonReleased {
		full := p.b[:cap(p.b)]
		for i := range full {
			full[i] = 0xAA
		}
	}
	if cap(p.b) <= maxPooled {
		p.b = p.b[:0]
		bodyPool.Put(p)
	}
}

// newBodyBuf returns pooled memory for a body of about n bytes, with one
// reference (the owner's).
func newBodyBuf(n int) *bodyBuf {
	p, _ := bodyPool.Get().(*bodyBuf)
	if p == nil || cap(p.b) < n || cap(p.b) > 1<<20 && cap(p.b) > 4*n {
		// Too small, or much too large to keep for this body (a huge
		// body's memory is dropped rather than pinned by small ones).
		p = &bodyBuf{b: make([]byte, 0, n+n/8)}
	}
	p.b = p.b[:0]
	g := p.gen.Add(1)
	p.refs.Store(1)
	p.owner.Store(g)
	return p
}

// poisonReleased, when set (tests; or AUDITPIPE_POISON_RELEASED=1 in the
// environment, for pipeline tests), overwrites a released body's memory
// with 0xAA bytes before it is pooled: a read of it after release shows
// up as changed bytes.
var poisonReleased = os.Getenv("AUDITPIPE_POISON_RELEASED") == "1"

// Pools. A scratch buffer holds the uncompressed body only while it is
// compressed; the body handed to net/http is pooled memory (bodyBuf)
// given back by Body.Release once every request reading it was closed.
var (
	bodyPool    sync.Pool // *bodyBuf
	scratchPool sync.Pool // *[]byte
	gzipPool    = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return w
	}}
)

// chunkSize is how much of a body is built before it is compressed.
const chunkSize = 64 << 10

// maxPooled is the largest scratch buffer or body kept for reuse.
const maxPooled = 16 << 20

// Encode builds a body of n parts, part(dst, i) appending the i-th; size
// estimates the uncompressed body. With gz the body is gzip-compressed
// (level 1) as it is built, a chunk of about 64 KiB at a time, so each
// chunk is still in cache when the compressor reads it. A part that
// returns nil stops the build: the body is abandoned (Data nil).
func Encode(gz bool, size, n int, part func(dst []byte, i int) []byte) (Body, error) {
	if !gz {
		p := newBodyBuf(size + size/16)
		b := p.b
		for i := 0; i < n; i++ {
			if b = part(b, i); b == nil {
				return Body{}, nil
			}
		}
		p.b = b
		return Body{Data: b, Raw: len(b), buf: p, gen: p.gen.Load()}, nil
	}
	sp, _ := scratchPool.Get().(*[]byte)
	if sp == nil {
		sp = new([]byte)
	}
	chunk := (*sp)[:0]
	if chunk == nil {
		chunk = make([]byte, 0, chunkSize+chunkSize/4)
	}
	p := newBodyBuf(size/5 + 512)
	out := bytes.NewBuffer(p.b)
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
	p.b = out.Bytes()
	return Body{Data: p.b, Raw: raw, Gzip: true, buf: p, gen: p.gen.Load()}, nil
}
