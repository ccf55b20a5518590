// Command chainmix writes the record lines of many hash chains interleaved
// the way audit-consume writes a topic of many hosts: runs of --run records
// of one chain, each run after a chain mark naming the chain (the recordHash
// of its first record). scripts/bench.sh PART fleet feeds it to audit-verify
// to measure many chains beside one, and memory per chain held.
//
//	chainmix --chains 100 --records 1000000 [--run 10] [--size 750] [--marks=false]
//
// --records is the total across the chains (each gets records/chains, the
// first ones one more when it does not divide). Records are canonical JSON
// in audit-read's line layout, so audit-verify takes its fast path, as for
// records read from a database. --marks=false (one chain only) writes the
// plain lines of one database, without a chain mark.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chainmix:", err)
		os.Exit(2)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("chainmix", flag.ContinueOnError)
	chains := fs.Int("chains", 100, "number of chains")
	records := fs.Int("records", 100000, "records in all")
	run := fs.Int("run", 10, "records of one chain in a row")
	size := fs.Int("size", 750, "approximate bytes per record line")
	marks := fs.Bool("marks", true, "write chain marks (false: one chain's plain lines)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *chains < 1 || *records < *chains || *run < 1 || (!*marks && *chains != 1) {
		return errors.New("want --chains >= 1, --records >= --chains, --run >= 1; --marks=false only with --chains 1")
	}
	w := bufio.NewWriterSize(out, 1<<20)
	type state struct {
		id       string
		prev     string
		seq, end int
	}
	cs := make([]*state, *chains)
	for i := range cs {
		n := *records / *chains
		if i < *records%*chains {
			n++
		}
		cs[i] = &state{end: n}
	}
	pad := strings.Repeat("x", max(0, *size-265))
	const ts0 = 1764244800000
	var rec, line []byte
	left := *chains
	for left > 0 {
		for i, c := range cs {
			if c.seq >= c.end {
				continue
			}
			for k := 0; k < *run && c.seq < c.end; k++ {
				c.seq++
				ts := ts0 + int64(c.seq)
				rec = rec[:0]
				rec = append(rec, `{"actor":"agent:host`...)
				rec = strconv.AppendInt(rec, int64(i), 10)
				rec = append(rec, `","detail":"`...)
				rec = append(rec, pad...)
				rec = append(rec, `","kind":"tool_call","n":`...)
				rec = strconv.AppendInt(rec, int64(c.seq), 10)
				rec = append(rec, `,"tenantId":"acme","ts":`...)
				rec = strconv.AppendInt(rec, ts, 10)
				rec = append(rec, '}')
				h := sha256.New()
				h.Write([]byte(c.prev))
				h.Write([]byte{'\n'})
				h.Write(rec)
				sum := hex.EncodeToString(h.Sum(nil))
				if c.seq == 1 {
					c.id = sum
				}
				if k == 0 && *marks {
					fmt.Fprintf(w, `{"mark":{"type":"chain","chain":"%s"}}`+"\n", c.id)
				}
				line = line[:0]
				line = append(line, `{"seq":`...)
				line = strconv.AppendInt(line, int64(c.seq), 10)
				line = append(line, `,"ts":`...)
				line = strconv.AppendInt(line, ts, 10)
				line = append(line, `,"tenantId":"acme","kind":"tool_call","record":`...)
				line = append(line, rec...)
				line = append(line, `,"prevHash":"`...)
				line = append(line, c.prev...)
				line = append(line, `","recordHash":"`...)
				line = append(line, sum...)
				line = append(line, "\"}\n"...)
				w.Write(line)
				c.prev = sum
			}
			if c.seq >= c.end {
				left--
			}
		}
	}
	return w.Flush()
}
