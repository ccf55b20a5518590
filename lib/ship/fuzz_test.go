package ship

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
)

func fuzzRecord(seq int64) string {
	return fmt.Sprintf(`{"seq":%d,"ts":%d,"tenantId":"acme","kind":"tool_call","record":{"n":%d},"prevHash":"","recordHash":"%064x"}`, seq, seq, seq, seq)
}

func fuzzHeader(id int64, count int, first, last int64) string {
	return fmt.Sprintf(`{"batch":{"id":%d,"count":%d,"bytes":0,"firstSeq":%d,"lastSeq":%d,"intervalMs":0}}`, id, count, first, last)
}

// FuzzReadBatches feeds arbitrary bytes to audit-ship's framing reader. It
// must not panic or hang; every batch it sends on holds exactly the
// records its header announced, each a parsed record line whose bytes are
// a line of the input; and an error is either an input error (exit code
// 4) that names a line, or nil. The committed corpus is in
// testdata/fuzz/FuzzReadBatches.
func FuzzReadBatches(f *testing.F) {
	r1, r2, r3 := fuzzRecord(1), fuzzRecord(2), fuzzRecord(3)
	for _, s := range []string{
		fuzzHeader(1, 2, 1, 2) + "\n" + r1 + "\n" + r2 + "\n",
		fuzzHeader(1, 2, 1, 2) + "\n" + r1 + "\n" + r2 + "\n" + fuzzHeader(2, 1, 3, 3) + "\n" + r3 + "\n",
		fuzzHeader(1, 3, 1, 3) + "\n" + r1 + "\n" + r2 + "\n",                                 // ends mid-batch
		fuzzHeader(1, 3, 1, 3) + "\n" + r1 + "\n" + fuzzHeader(2, 1, 2, 2) + "\n" + r2 + "\n", // header inside a batch
		r1 + "\n", // record outside a batch
		fuzzHeader(1, 1, 1, 1) + "\n" + `{"seq":"1"}` + "\n",             // not a record
		fuzzHeader(1, 1, 1, 1) + "\n" + "\xff\xfe\n",                     // invalid UTF-8
		fuzzHeader(1, 1, 1, 1) + "\r\n" + r1 + "\r\n",                    // CRLF
		"\xef\xbb\xbf" + fuzzHeader(1, 1, 1, 1) + "\n\n  \n" + r1 + "\n", // BOM, blank lines
		fuzzHeader(1, 1, 1, 1) + "\n" + r1,                               // no final newline
		fuzzHeader(1, 0, 0, 0) + "\n",
		`{"batch":{"id":1,"count":-1}}` + "\n",
		"\x1f\x8b\x08\x00garbage",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := make(chan *Batch, 1024)
		err := ReadBatches(context.Background(), bytes.NewReader(in), out, 4096)
		close(out)
		if err != nil {
			if code := exitcode.Of(err); code != exitcode.Input && code != exitcode.Failure {
				t.Fatalf("exit code %d for %v", code, err)
			}
			if exitcode.Of(err) == exitcode.Input && !strings.Contains(err.Error(), "line ") && !strings.Contains(err.Error(), "stdin: ") {
				t.Fatalf("input error without a line: %v", err)
			}
		}
		var hp fastjson.Parser
		var lp chain.LineParser
		for b := range out {
			if len(b.Records) == 0 {
				// A count-0 header is refused by ParseHeader; nothing
				// empty may be sent.
				t.Fatalf("batch %d sent with no records", b.ID)
			}
			for _, r := range b.Records {
				if !bytes.Contains(in, r.Line) {
					t.Fatalf("record seq %d: its bytes are not in the input", r.Seq)
				}
				if _, isHeader, _ := framing.ParseHeader(&hp, r.Line); isHeader {
					t.Fatalf("a header was sent as a record: %q", r.Line)
				}
				rec, perr := lp.Parse(r.Line)
				if perr != nil {
					t.Fatalf("a record that does not parse was sent: %v", perr)
				}
				if rec.Seq != r.Seq || string(rec.RecordHash) != r.Hash {
					t.Fatalf("record seq %d / %s indexed as %d / %s", rec.Seq, rec.RecordHash, r.Seq, r.Hash)
				}
			}
		}
	})
}
