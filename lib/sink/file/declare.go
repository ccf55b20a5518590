package file

import (
	"context"
	"io"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// Decl declares the file sink to audit-ship and audit-batch.
var Decl = &sink.Decl{
	Kind: "file",
	Flags: []sink.Flag{
		{Name: "gzip", Type: sink.Bool, Default: "true", Help: "compress the output"},
		{Name: "path", Help: "output file (or directory with --dir)"},
		{Name: "dir", Type: sink.Bool, Help: "--path is a directory of per-day files audit-YYYY-MM-DD.ndjson[.gz]"},
		{Name: "no-fsync", Type: sink.Bool, Help: "do not fsync before acking (a power loss can lose acked batches)"},
	},
	Batch: sink.Batch{Records: 10_000, Bytes: 8 << 20},
	// A file is written in the order Sends are called: one at a time keeps
	// the archive in seq order, so it stays valid replay input.
	Sequential: true,
	New: func(ctx context.Context, v *sink.Values) (sink.Sink, error) {
		if v.String("path") == "" {
			return nil, sink.Usagef("--kind file needs --path")
		}
		s, err := New(Config{Path: v.String("path"), Dir: v.Bool("dir"), Gzip: v.Bool("gzip"), NoFsync: v.Bool("no-fsync")})
		if err != nil {
			return nil, exitcode.New(exitcode.Usage, err)
		}
		return s, nil
	},
	DryRun: func(v *sink.Values, w io.Writer, recs []sink.Record) error {
		where := "append to " + v.String("path")
		if v.Bool("dir") {
			where = "append to the per-day files audit-YYYY-MM-DD.ndjson in " + v.String("path")
		}
		if v.Bool("gzip") {
			where += " (gzip-compressed; shown decoded)"
		}
		io.WriteString(w, "\n"+where+":\n")
		for _, r := range recs {
			w.Write(r.Line)
			io.WriteString(w, "\n")
		}
		return nil
	},
}
