package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"testing"
)

// The output is many hash chains, each run after a chain mark naming its
// chain (the recordHash of its seq 1), or one chain's plain lines: every
// record's recordHash is SHA-256(prevHash + "\n" + record), every prevHash
// the chain's previous recordHash, seqs contiguous per chain.
func TestChainmixChains(t *testing.T) {
	for _, tc := range []struct {
		args                   []string
		records, marks, chains int
	}{
		{[]string{"--chains", "3", "--records", "31", "--run", "4"}, 31, 9, 3},
		{[]string{"--chains", "100", "--records", "1000", "--run", "10"}, 1000, 100, 100},
		{[]string{"--chains", "1", "--records", "50", "--marks=false"}, 50, 0, 1},
	} {
		var out bytes.Buffer
		if err := run(tc.args, &out); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		type state struct {
			seq  int64
			hash string
		}
		heads := map[string]*state{}
		cur, marks, records := "", 0, 0
		sc := bufio.NewScanner(&out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			l := sc.Bytes()
			var v struct {
				Mark *struct {
					Type, Chain string
				} `json:"mark"`
				Seq        int64           `json:"seq"`
				Record     json.RawMessage `json:"record"`
				PrevHash   string          `json:"prevHash"`
				RecordHash string          `json:"recordHash"`
			}
			if err := json.Unmarshal(l, &v); err != nil {
				t.Fatalf("%v: %s: %v", tc.args, l, err)
			}
			if v.Mark != nil {
				if v.Mark.Type != "chain" || v.Mark.Chain == "" {
					t.Fatalf("%v: mark %s", tc.args, l)
				}
				cur = v.Mark.Chain
				marks++
				continue
			}
			records++
			s := sha256.Sum256([]byte(v.PrevHash + "\n" + string(v.Record)))
			if hex.EncodeToString(s[:]) != v.RecordHash {
				t.Fatalf("%v: seq %d: recordHash does not match", tc.args, v.Seq)
			}
			if v.Seq == 1 && tc.marks > 0 && v.RecordHash != cur {
				t.Fatalf("%v: the mark names %s, seq 1 has %s", tc.args, cur, v.RecordHash)
			}
			h := heads[cur]
			if h == nil {
				h = &state{}
				heads[cur] = h
			}
			if v.Seq != h.seq+1 || v.PrevHash != h.hash {
				t.Fatalf("%v: chain %s: seq %d after %d, or a broken link", tc.args, cur, v.Seq, h.seq)
			}
			h.seq, h.hash = v.Seq, v.RecordHash
		}
		if records != tc.records || marks != tc.marks || len(heads) != tc.chains {
			t.Errorf("%v: %d records, %d marks, %d chains; want %d, %d, %d", tc.args, records, marks, len(heads), tc.records, tc.marks, tc.chains)
		}
	}
	if err := run([]string{"--chains", "2", "--marks=false"}, io.Discard); err == nil {
		t.Error("--marks=false with 2 chains: no error")
	}
}
