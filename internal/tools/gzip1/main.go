// Command gzip1 compresses stdin to stdout at gzip level 1 with the
// compressor audit-ship uses (github.com/klauspost/compress/gzip, written
// 64 KiB at a time as lib/sink/httpsink.Encode does). scripts/bench.sh
// uses it for the gzip piece of the per-record limit: GNU gzip -1 is
// several times slower, so it would flatter the pipeline.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
)

func main() {
	zw, err := gzip.NewWriterLevel(os.Stdout, gzip.BestSpeed)
	if err == nil {
		buf := make([]byte, 64<<10)
		_, err = io.CopyBuffer(zw, os.Stdin, buf)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gzip1:", err)
		os.Exit(1)
	}
}
