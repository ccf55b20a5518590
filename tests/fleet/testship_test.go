package fleet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"

	"github.com/auditpipe/auditpipe/lib/ack"
)

// testShip plays audit-batch | audit-ship for the central pipeline when
// FLEET_SHIPPER=test (the approach of stage/auditconsume's tests): it reads
// audit-verify's output (chain marks, record lines), posts each run of one
// chain's records to VictoriaLogs' jsonline intake (fields seq, chain,
// group) and writes an ack line naming the chain to the FIFO once the store
// answered. Args: URL GROUP FIFO.
func testShip(args []string) int {
	url, group, fifo := args[0], args[1], args[2]
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testship:", err)
		return 1
	}
	defer w.Close()
	r := bufio.NewReaderSize(os.Stdin, 1<<20)
	cur := ""
	var body bytes.Buffer
	var first, last int64
	var lastHash string
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		resp, err := http.Post(url+"/insert/jsonline?_msg_field=_msg&_stream_fields=group,chain", "application/stream+json", bytes.NewReader(body.Bytes()))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		line := append(ack.Append(nil, ack.Ack{Exporter: "test:" + group, Chain: cur, FirstSeq: first, LastSeq: last, LastHash: lastHash, Count: n}), '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
		body.Reset()
		n = 0
		return nil
	}
	for {
		l, err := r.ReadBytes('\n')
		if len(l) > 0 {
			l = bytes.TrimSuffix(l, []byte("\n"))
			if bytes.HasPrefix(l, []byte(`{"mark":`)) {
				var m struct {
					Mark struct {
						Chain string `json:"chain"`
					} `json:"mark"`
				}
				json.Unmarshal(l, &m)
				if m.Mark.Chain != cur {
					if err := flush(); err != nil {
						fmt.Fprintln(os.Stderr, "testship:", err)
						return 1
					}
					cur = m.Mark.Chain
				}
				continue
			}
			var rec struct {
				Seq        int64  `json:"seq"`
				RecordHash string `json:"recordHash"`
			}
			json.Unmarshal(l, &rec)
			if n == 0 {
				first = rec.Seq
			}
			last, lastHash = rec.Seq, rec.RecordHash
			ev, _ := json.Marshal(map[string]string{"_msg": string(l), "seq": strconv.FormatInt(rec.Seq, 10), "chain": cur, "group": group})
			body.Write(ev)
			body.WriteByte('\n')
			n++
		}
		if err != nil || r.Buffered() == 0 || n >= 500 {
			if ferr := flush(); ferr != nil {
				fmt.Fprintln(os.Stderr, "testship:", ferr)
				return 1
			}
		}
		if err != nil {
			return 0
		}
	}
}
