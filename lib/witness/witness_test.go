package witness_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditpipe/auditpipe/internal/fake/witnessfake"
	"github.com/auditpipe/auditpipe/lib/checkpoint"
	"github.com/auditpipe/auditpipe/lib/witness"
)

const origin = "example.com/audit/test"

// testLog is a log: its key and tree.
type testLog struct {
	signer note.Signer
	vkey   string
	store  *checkpoint.MemStore
	b      *checkpoint.Builder
	n      int
}

func newLog(t *testing.T) *testLog {
	t.Helper()
	skey, vkey, err := checkpoint.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{signer: s, vkey: vkey, store: &checkpoint.MemStore{}, b: checkpoint.NewBuilder(origin)}
}

// grow appends n records whose recordHashes depend on salt.
func (l *testLog) grow(t *testing.T, n int, salt string) {
	t.Helper()
	for range n {
		l.n++
		h := fmt.Sprintf("%064x", l.n)
		if salt != "" {
			h = fmt.Sprintf("%s%062x", salt[:2], l.n)
		}
		if err := l.store.Append([]byte(h)); err != nil {
			t.Fatal(err)
		}
		if err := l.b.Append(int64(l.n), []byte(h)); err != nil {
			t.Fatal(err)
		}
	}
}

func (l *testLog) sign(t *testing.T) []byte {
	t.Helper()
	msg, err := l.b.Sign(l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestVerifierKeys(t *testing.T) {
	s, vkey, err := witness.GenerateSigner("w.example/one", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, logKey, _ := checkpoint.GenerateKey(origin)
	for _, tc := range []struct {
		name, vkey, want string
	}{
		{"good", vkey, ""},
		{"log key (type 0x01)", logKey, "signature type 0x01, want 0x04"},
		{"wrong key ID", strings.Replace(vkey, "+", "+0", 1)[:len("w.example/one+")] + "00000000" + vkey[len("w.example/one+")+8:], "key ID does not match"},
		{"no key", "w.example/one", "is not name+keyid+key"},
		{"not base64", "w.example/one+00000000+!!!", "not base64 of 33 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := witness.NewVerifier(tc.vkey)
			if tc.want == "" {
				if err != nil || v.Name() != "w.example/one" || v.KeyHash() != s.KeyHash() {
					t.Fatalf("NewVerifier = %v, %v", v, err)
				}
				return
			}
			if err == nil || !errors.Is(err, witness.ErrBadKey) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewVerifier(%q) = %v, want ErrBadKey with %q", tc.vkey, err, tc.want)
			}
		})
	}
}

func TestCosignatures(t *testing.T) {
	l := newLog(t)
	l.grow(t, 5, "")
	msg := l.sign(t)
	s, vkey, _ := witness.GenerateSigner("w.example/one", rand.Reader)
	s.Now = func() time.Time { return time.Unix(1700000000, 0) }
	_, other, _ := witness.GenerateSigner("w.example/two", rand.Reader)
	ws, _, err := witness.NewVerifiers(vkey, other)
	if err != nil {
		t.Fatal(err)
	}
	text := msg[:strings.Index(string(msg), "\n\n")+1]
	line, err := s.CosignLine(text)
	if err != nil {
		t.Fatal(err)
	}
	cosigned := witness.AddCosignatures(msg, line)
	cs, err := witness.Cosignatures(cosigned, ws)
	if err != nil || len(cs) != 1 || cs[0].Witness != "w.example/one" || cs[0].Time.Unix() != 1700000000 {
		t.Fatalf("Cosignatures = %+v, %v", cs, err)
	}
	// The log's note alone: no cosignature, no error.
	if cs, err := witness.Cosignatures(msg, ws); err != nil || len(cs) != 0 {
		t.Fatalf("Cosignatures(uncosigned) = %+v, %v", cs, err)
	}
	// Every byte of the timestamp and signature matters.
	b64 := strings.TrimSuffix(string(line[len("— w.example/one "):]), "\n")
	raw, _ := base64.StdEncoding.DecodeString(b64)
	for i := 4; i < len(raw); i++ {
		bad := append([]byte(nil), raw...)
		bad[i] ^= 1
		l2 := "— w.example/one " + base64.StdEncoding.EncodeToString(bad) + "\n"
		if _, err := witness.Cosignatures(witness.AddCosignatures(msg, []byte(l2)), ws); !errors.Is(err, witness.ErrBadCosignature) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	// A body changed under a valid cosignature.
	bad := []byte(strings.Replace(string(cosigned), "\n5\n", "\n6\n", 1))
	if _, err := witness.Cosignatures(bad, ws); !errors.Is(err, witness.ErrBadCosignature) {
		t.Fatalf("altered body: %v, want ErrBadCosignature", err)
	}
}

// TestProver: the proofs from a frontier and the leaves after it are the
// proofs of the whole tree, for every base <= old <= new in a range.
func TestProver(t *testing.T) {
	l := newLog(t)
	const N = 40
	fronts := map[int64][]tlog.Hash{0: nil}
	for i := 1; i <= N; i++ {
		l.grow(t, 1, "")
		fronts[int64(i)] = l.b.Frontier()
	}
	for base := int64(0); base <= N; base += 3 {
		p, err := witness.NewProver(base, fronts[base])
		if err != nil {
			t.Fatal(err)
		}
		for i := base + 1; i <= N; i++ {
			p.AppendLeaf(leaf(fmt.Sprintf("%064x", i)))
		}
		for old := base; old <= N; old++ {
			for n := old; n <= N; n += 5 {
				got, err := p.Prove(old, n)
				if err != nil {
					t.Fatalf("base %d: Prove(%d, %d): %v", base, old, n, err)
				}
				want, _ := checkpoint.ProveConsistency(l.store, old, n)
				if old == 0 || old == n {
					want = nil
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("base %d: Prove(%d, %d) = %v, want %v", base, old, n, got, want)
				}
			}
		}
		if base > 0 {
			if _, err := p.Prove(base-1, N); err == nil {
				t.Fatalf("base %d: a proof from before the base", base)
			}
		}
		if err := p.Advance(base + (N-base)/2); err != nil {
			t.Fatal(err)
		}
		got, err := p.Prove(p.Base(), N)
		want, _ := checkpoint.ProveConsistency(l.store, p.Base(), N)
		if p.Base() == 0 || p.Base() == N {
			want = nil
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after Advance(%d): %v, %v", p.Base(), got, err)
		}
	}
}

func startFake(t *testing.T, l *testLog, name string) *witnessfake.Witness {
	t.Helper()
	w, err := witnessfake.Start(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	if err := w.AddLog(origin, l.vkey); err != nil {
		t.Fatal(err)
	}
	return w
}

func parse(t *testing.T, f *witnessfake.Witness) witness.Witness {
	t.Helper()
	w, err := witness.ParseWitness(f.VKey + "=" + f.URL)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestClient: each answer of the protocol, as the client reports it.
func TestClient(t *testing.T) {
	ctx := context.Background()
	l := newLog(t)
	f := startFake(t, l, "w.example/one")
	w := parse(t, f)
	c := &witness.Client{}
	l.grow(t, 10, "")
	msg10 := l.sign(t)
	lines, err := c.AddCheckpoint(ctx, w, 0, nil, msg10)
	if err != nil || !strings.HasPrefix(string(lines), "— w.example/one ") {
		t.Fatalf("first add = %q, %v", lines, err)
	}
	l.grow(t, 7, "")
	msg17 := l.sign(t)
	// A wrong old size: 409 with the witness's size.
	_, err = c.AddCheckpoint(ctx, w, 0, nil, msg17)
	var ce *witness.ConflictError
	if !errors.As(err, &ce) || !ce.HasSize || ce.Size != 10 {
		t.Fatalf("old 0 = %v, want a 409 naming size 10", err)
	}
	proof, _ := checkpoint.ProveConsistency(l.store, 10, 17)
	if _, err := c.AddCheckpoint(ctx, w, 10, proof, msg17); err != nil {
		t.Fatal(err)
	}
	// A split view: the same log key signs another tree of size 20.
	fork := newLog(t)
	fork.signer, fork.vkey = l.signer, l.vkey
	fork.grow(t, 20, "ff")
	forged := fork.sign(t)
	fproof, _ := checkpoint.ProveConsistency(fork.store, 17, 20)
	if _, err := c.AddCheckpoint(ctx, w, 17, fproof, forged); !errors.Is(err, witness.ErrProofRejected) {
		t.Fatalf("forked view = %v, want ErrProofRejected", err)
	}
	// Down: transient.
	f.SetDown(true)
	l.grow(t, 3, "")
	msg20 := l.sign(t)
	proof, _ = checkpoint.ProveConsistency(l.store, 17, 20)
	var te *witness.TransientError
	if _, err := c.AddCheckpoint(ctx, w, 17, proof, msg20); !errors.As(err, &te) {
		t.Fatalf("down = %v, want TransientError", err)
	}
	f.SetDown(false)
	// A corrupted cosignature is caught by the client.
	f.SetCorrupt(true)
	if _, err := c.AddCheckpoint(ctx, w, 17, proof, msg20); !errors.Is(err, witness.ErrBadCosignature) {
		t.Fatalf("corrupt = %v, want ErrBadCosignature", err)
	}
	// Unknown log: 404; another key: 403.
	other := newLog(t)
	other.grow(t, 1, "")
	if _, err := c.AddCheckpoint(ctx, w, 0, nil, other.sign(t)); !errors.Is(err, witness.ErrForbidden) {
		t.Fatalf("other key = %v, want ErrForbidden", err)
	}
}

type events struct {
	mu       sync.Mutex
	alarms   []string
	retries  int
	cosigned map[int64][]byte
}

func submitter(l *testLog, ws ...witness.Witness) (*witness.Submitter, *events) {
	ev := &events{cosigned: map[int64][]byte{}}
	s := &witness.Submitter{Client: &witness.Client{}, Witnesses: ws, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		OnAlarm: func(w witness.Witness, err error) {
			ev.mu.Lock()
			ev.alarms = append(ev.alarms, err.Error())
			ev.mu.Unlock()
		},
		OnRetry: func(witness.Witness, error, time.Duration) { ev.mu.Lock(); ev.retries++; ev.mu.Unlock() },
		OnCosigned: func(n int64, msg []byte) {
			ev.mu.Lock()
			ev.cosigned[n] = msg
			ev.mu.Unlock()
		}}
	p, _ := witness.NewProver(int64(l.n), l.b.Frontier())
	s.Start(p)
	return s, ev
}

// grow adds records to the log and the submitter and hands over a checkpoint.
func feed(t *testing.T, l *testLog, s *witness.Submitter, n int) {
	for range n {
		l.grow(t, 1, "")
		s.AppendLeaf(leaf(fmt.Sprintf("%064x", l.n)))
	}
	s.Checkpoint(l.sign(t), int64(l.n))
}

// TestSubmitterDownAndBack: a witness down for a while and back: nothing
// lost, the newest checkpoint cosigned, the unwitnessed time reported
// while down and 0 after.
func TestSubmitterDownAndBack(t *testing.T) {
	l := newLog(t)
	f := startFake(t, l, "w.example/one")
	s, ev := submitter(l, parse(t, f))
	ctx := context.Background()
	feed(t, l, s, 5)
	s.Flush(ctx)
	if got := s.WitnessedSize(); got != 5 {
		t.Fatalf("witnessed %d, want 5", got)
	}
	f.SetDown(true)
	feed(t, l, s, 5)
	s.Flush(ctx)
	feed(t, l, s, 5)
	s.Flush(ctx)
	if s.WitnessedSize() != 5 || s.Unwitnessed() <= 0 || ev.retries < 2 {
		t.Fatalf("down: witnessed %d, unwitnessed %v, retries %d", s.WitnessedSize(), s.Unwitnessed(), ev.retries)
	}
	f.SetDown(false)
	s.Flush(ctx)
	if s.WitnessedSize() != 15 || s.Unwitnessed() != 0 || f.Size(origin) != 15 || len(ev.alarms) != 0 {
		t.Fatalf("back: witnessed %d, unwitnessed %v, witness at %d, alarms %v", s.WitnessedSize(), s.Unwitnessed(), f.Size(origin), ev.alarms)
	}
	if _, ok := ev.cosigned[10]; ok {
		t.Fatal("size 10 was cosigned while the witness was down")
	}
	ws, _, _ := witness.NewVerifiers(f.VKey)
	if cs, err := witness.Cosignatures(ev.cosigned[15], ws); err != nil || len(cs) != 1 {
		t.Fatalf("cosigned 15: %v %v", cs, err)
	}
}

// TestSubmitterAlarms: refusals are alarms, each once, never retried.
func TestSubmitterAlarms(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		do   func(l *testLog, f *witnessfake.Witness)
		want string
	}{
		{"rolled back", func(l *testLog, f *witnessfake.Witness) { f.RollBack(origin, 1) }, "was rolled back: it now holds size 5 but cosigned size 10"},
		{"corrupt", func(l *testLog, f *witnessfake.Witness) { f.SetCorrupt(true) }, "bad cosignature: the cosignature of witness w.example/one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLog(t)
			f := startFake(t, l, "w.example/one")
			s, ev := submitter(l, parse(t, f))
			feed(t, l, s, 5)
			s.Flush(ctx)
			feed(t, l, s, 5)
			s.Flush(ctx)
			tc.do(l, f)
			feed(t, l, s, 5)
			s.Flush(ctx)
			calls := f.Calls()
			feed(t, l, s, 5)
			s.Flush(ctx)
			if len(ev.alarms) != 1 || !strings.Contains(ev.alarms[0], tc.want) {
				t.Fatalf("alarms %q, want one with %q", ev.alarms, tc.want)
			}
			if f.Calls() != calls {
				t.Fatal("a witness that refused was asked again")
			}
			if s.Refusals() != 1 {
				t.Fatalf("Refusals = %d", s.Refusals())
			}
		})
	}
}

// TestSubmitterSplitView: the log key signs a second view; the witness,
// which cosigned the first, refuses it.
func TestSubmitterSplitView(t *testing.T) {
	ctx := context.Background()
	l := newLog(t)
	f := startFake(t, l, "w.example/one")
	s, _ := submitter(l, parse(t, f))
	feed(t, l, s, 8)
	s.Flush(ctx)
	// The thief's log: same key, other records, from scratch.
	fork := newLog(t)
	fork.signer, fork.vkey = l.signer, l.vkey
	fs, ev := submitter(fork, parse(t, f))
	for range 12 {
		fork.grow(t, 1, "ee")
		fs.AppendLeaf(leaf(fmt.Sprintf("ee%062x", fork.n)))
	}
	fs.Checkpoint(fork.sign(t), 12)
	fs.Flush(ctx)
	if len(ev.alarms) != 1 || !strings.Contains(ev.alarms[0], "ejected the consistency proof (422)") {
		t.Fatalf("alarms %q", ev.alarms)
	}
	if f.Size(origin) != 8 {
		t.Fatalf("the witness moved to %d", f.Size(origin))
	}
}

func leaf(h string) []byte {
	raw, err := hex.DecodeString(h)
	if err != nil {
		panic(err)
	}
	return raw
}

// TestSubmitterTooFarBehind: a witness further behind than MaxPending
// cannot be proven to by this run: reported once (OnBehind), not an alarm,
// not asked again.
func TestSubmitterTooFarBehind(t *testing.T) {
	ctx := context.Background()
	l := newLog(t)
	f := startFake(t, l, "w.example/one")
	s, ev := submitter(l, parse(t, f))
	s.MaxPending = 5
	var behind []string
	s.OnBehind = func(w witness.Witness, err error) { behind = append(behind, err.Error()) }
	feed(t, l, s, 4)
	s.Flush(ctx)
	f.SetDown(true)
	feed(t, l, s, 20)
	s.Flush(ctx)
	f.SetDown(false)
	feed(t, l, s, 1)
	s.Flush(ctx)
	feed(t, l, s, 1)
	s.Flush(ctx)
	if len(behind) != 1 || !strings.Contains(behind[0], "witness w.example/one holds size 4: the witness is further behind than this run keeps the tree for") {
		t.Fatalf("behind %q", behind)
	}
	if len(ev.alarms) != 0 || s.Refusals() != 0 || s.Unwitnessed() == 0 {
		t.Fatalf("alarms %q, refusals %d, unwitnessed %v", ev.alarms, s.Refusals(), s.Unwitnessed())
	}
}
