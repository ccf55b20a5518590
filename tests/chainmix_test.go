package tests

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/auditpipe/auditpipe/lib/chain"
)

var firstHash = regexp.MustCompile(`"recordHash":"([0-9a-f]{64})"`)

// chainmix OUT RUN FILE... writes to OUT the record lines of each FILE
// (one host's chain, as audit-read writes it) interleaved the way
// audit-consume writes a topic of many chains: runs of RUN records, each
// after a chain mark naming its chain (the recordHash of its first
// record). It stands in for Kafka in scripts about audit-verify's many
// chains.
func chainmix(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 3 {
		ts.Fatalf("usage: chainmix OUT RUN FILE...")
	}
	run, err := strconv.Atoi(args[1])
	if err != nil || run < 1 {
		ts.Fatalf("chainmix: bad RUN %q", args[1])
	}
	var ids []string
	var lines [][]string
	for _, f := range args[2:] {
		b, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		ls := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		m := firstHash.FindStringSubmatch(ls[0])
		if m == nil {
			ts.Fatalf("chainmix: %s: no recordHash on its first line", f)
		}
		ids = append(ids, m[1])
		lines = append(lines, ls)
	}
	out, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	defer out.Close()
	w := bufio.NewWriter(out)
	for i := 0; ; i += run {
		more := false
		for c, ls := range lines {
			if i >= len(ls) {
				continue
			}
			more = true
			w.Write(chain.AppendChainMark(nil, ids[c], nil))
			w.WriteByte('\n')
			for j := i; j < i+run && j < len(ls); j++ {
				w.WriteString(ls[j] + "\n")
			}
		}
		if !more {
			break
		}
	}
	ts.Check(w.Flush())
	ts.Setenv("CHAIN1", ids[0])
	if len(ids) > 1 {
		ts.Setenv("CHAIN2", ids[1])
	}
}
