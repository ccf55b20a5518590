package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/witness"
)

// TestStoreChecker: a store's copy of a 30-record log with checkpoints at
// 10, 20 and 30 (10 cosigned), each loss named as a seq range.
func TestStoreChecker(t *testing.T) {
	signer, vs := testVerifiers(t)
	recs := chainOf(30, nil)
	hs := hashesOf(recs)
	cps := map[int64][]byte{}
	for _, n := range []int{10, 20, 30} {
		cps[int64(n)] = signAt(t, signer, hs, n)
	}
	seed := sha256.Sum256([]byte("store witness"))
	ws, wvkey, _ := witness.GenerateSigner("witness.test/w", bytes.NewReader(seed[:]))
	wvs, _, _ := witness.NewVerifiers(wvkey)
	text := cps[10][:bytes.Index(cps[10], []byte("\n\n"))+1]
	line, _ := ws.CosignLine(text)
	cosigned10 := witness.AddCosignatures(cps[10], line)

	type want struct {
		reason     Reason
		first, end int64
		detail     string
	}
	for _, tc := range []struct {
		name    string
		drop    func(seq int64) bool // records the store lost
		alter   int64                // a record whose recordHash the store changed
		cps     []int64              // checkpoints the store holds
		opt     StoreOptions
		want    []want
		cosign  bool
		reorder bool
	}{
		{name: "whole", cps: []int64{10, 20, 30}},
		{name: "records deleted", drop: func(s int64) bool { return s >= 12 && s <= 14 }, cps: []int64{10, 20, 30},
			want: []want{{ReasonStoreMissingRecords, 12, 14, "the store lacks seqs 12..14 (3 records), signed by the checkpoint of size 20 the store holds"}}},
		{name: "tail deleted", drop: func(s int64) bool { return s > 25 }, cps: []int64{10, 20, 30},
			want: []want{{ReasonStoreMissingRecords, 26, 30, "the store lacks seqs 26..30 (5 records), signed by the checkpoint of size 30"}}},
		{name: "two gaps", drop: func(s int64) bool { return s == 3 || s == 27 }, cps: []int64{10, 20, 30},
			want: []want{{ReasonStoreMissingRecords, 3, 3, "seqs 3..3 (1 records), signed by the checkpoint of size 10"}, {ReasonStoreMissingRecords, 27, 27, "signed by the checkpoint of size 30"}}},
		{name: "checkpoint deleted (--every)", cps: []int64{10, 30}, opt: StoreOptions{Every: 10},
			want: []want{{ReasonStoreMissingCheckpoint, 11, 20, "the store lacks the checkpoint of size 20 (seal signs every 10 records)"}}},
		{name: "checkpoint deleted (reference)", cps: []int64{10, 20}, opt: StoreOptions{Reference: [][]byte{cps[10], cps[20], cps[30]}},
			want: []want{{ReasonStoreMissingCheckpoint, 0, 0, "the store lacks the checkpoint of size 30 (reference checkpoint #3)"}}},
		{name: "record altered", alter: 5, cps: []int64{10, 20, 30},
			want: []want{{ReasonStoreAltered, 6, 6, "the store's seq 6 has prevHash"}, {ReasonStoreAltered, 1, 10, "the store's records 1..10 have root"}}},
		{name: "unwitnessed", cps: []int64{10, 20, 30}, cosign: true, opt: StoreOptions{Witnesses: wvs, Quorum: 1},
			want: []want{{ReasonUnwitnessed, 11, 30, "the store's seqs 11..30 are not covered by a checkpoint it holds with 1 witness cosignatures (the newest such is of size 10)"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := tc.opt
			opt.Verifiers, opt.Origin = vs, testOrigin
			sc, err := NewStoreChecker(opt)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.cps {
				msg := cps[n]
				if tc.cosign && n == 10 {
					msg = cosigned10
				}
				sc.AddCheckpoint(msg, fmt.Sprintf("the checkpoint of size %d", n))
			}
			for _, r := range recs {
				if tc.drop != nil && tc.drop(r.seq) {
					continue
				}
				h := r.hash
				if r.seq == tc.alter {
					h = strings.Repeat("0", 64)
				}
				if err := sc.Add(r.seq, h, r.prevHash); err != nil {
					t.Fatal(err)
				}
				if r.seq == 15 { // a duplicate the store holds twice
					if err := sc.Add(r.seq, h, r.prevHash); err != nil {
						t.Fatal(err)
					}
				}
			}
			rep := sc.Finish()
			if len(rep.Findings) != len(tc.want) {
				t.Fatalf("findings:\n%v\nwant %d", rep.Findings, len(tc.want))
			}
			for i, w := range tc.want {
				f := rep.Findings[i]
				if f.Reason != w.reason || f.FirstSeq != w.first || f.LastSeq != w.end || !strings.Contains(f.Detail, w.detail) {
					t.Errorf("finding %d = %v (seq %d..%d), want %s seq %d..%d %q", i, f, f.FirstSeq, f.LastSeq, w.reason, w.first, w.end, w.detail)
				}
			}
			if !slices.Equal(rep.Sizes, tc.cps) {
				t.Errorf("sizes %v", rep.Sizes)
			}
		})
	}
	// Out of order: an error naming the fix, not a finding.
	sc, _ := NewStoreChecker(StoreOptions{Verifiers: vs, Origin: testOrigin})
	sc.Add(2, recs[1].hash, recs[1].prevHash)
	if err := sc.Add(1, recs[0].hash, recs[0].prevHash); err == nil || !strings.Contains(err.Error(), "must be in seq order") {
		t.Fatalf("out of order: %v", err)
	}
}
