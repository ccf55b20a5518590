package auditcheckpoint

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/auditpipe/auditpipe/lib/metrics"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/checkpoint"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/elide"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/ndjson"
	"github.com/auditpipe/auditpipe/lib/stagemetrics"
	"github.com/auditpipe/auditpipe/lib/witness"
)

const sealSynopsis = `usage: audit-checkpoint seal --signer FILE --out FILE [--state FILE] [--emit-checkpoints] [flags] < records

A filter: reads record lines on stdin, verifies their chain, writes them to
stdout byte for byte, and appends a signed checkpoint of the log's Merkle
tree to --out whenever the tree's size is a multiple of --every, every
--interval if records arrived, and at the end of input or the first
SIGINT/SIGTERM. The checkpoint file is fsynced after each line.

The tree covers the log from seq 1. With --state the tree's frontier is
kept between runs (written atomically before each checkpoint is appended)
and a run may start at any seq from 1 to the state's size + 1: records the
state already covers are passed through, and the last of them must have the
recordHash that was sealed, or seal stops (exit 3: the log changed since).
A stream that starts past the state's size + 1 is refused.

With --witness VKEY=URL (or --witness-file) each checkpoint is sent to C2SP
tlog-witnesses in the background; cosigned notes are appended to --out. A
witness that is down is retried with backoff (records keep flowing); one
that refuses (another tree, rolled back, a bad cosignature) is reported
once and the run exits 3 after passing every record on.

With --emit-checkpoints each checkpoint (and cosigned note) is also written
on stdout as a {"checkpoint":...} line after the record it covers, for
audit-batch and audit-ship to carry to the SIEM; a restart inside the
sealed part re-emits those the shipper's cursor may not cover.

Examples:
  audit-read --db audit.db | audit-checkpoint seal --signer ckpt.key --out checkpoints.ndjson --state seal.state >/dev/null
  ... | audit-checkpoint seal --signer env:CKPT_KEY --out checkpoints.ndjson --state seal.state --witness-file witnesses.txt | ...
  audit-read --db audit.db --from-cursor splunk:prod | audit-verify --db audit.db --from-cursor splunk:prod \
    | audit-checkpoint seal --signer ckpt.key --out checkpoints.ndjson --state seal.state --every 10000 --interval 1m \
    | audit-batch | audit-ship ...`

type sealConfig struct {
	signerPath string
	origin     string
	every      int64
	interval   time.Duration
	out        string
	state      string
	maxLine    int
	window     int
	quiet      bool
	metrics    stagemetrics.Flags
	flow       *stagemetrics.Flow // while running
	witnesses  fileList           // --witness VKEY=URL
	witFiles   fileList           // --witness-file FILE
	witFlush   time.Duration
	extSigner  string // --external-signer COMMAND
	extKey     string // --external-signer-key FILE
	emit       bool   // --emit-checkpoints
}

// sealState is seal's --state file: where the tree stood at the last
// checkpoint, so that the next run extends that tree instead of trusting
// whatever the database holds when it starts.
//
//	{"origin":"example.com/audit/prod","size":300,"root":"<base64>","lastHash":"<64 hex>",
//	 "frontier":["<base64>",...],"note":"<the signed checkpoint of that size>"}
//
// lastHash is the recordHash of seq size: the next record's prevHash must be
// it, and a run that replays sealed records must arrive at it.
type sealState struct {
	Origin   string   `json:"origin"`
	Size     int64    `json:"size"`
	Root     string   `json:"root"`
	LastHash string   `json:"lastHash"`
	Frontier []string `json:"frontier"`
	Note     string   `json:"note"`
	// With --witness: what the consistency proofs for a witness that is
	// behind need (the tree's frontier at the smallest size a witness may
	// hold, and the leaf hashes after it), so that a witness down when a
	// run stopped is brought up to date by the next.
	Witness *witnessJournal `json:"witness,omitempty"`
}

type witnessJournal struct {
	Base     int64    `json:"base"`
	Frontier []string `json:"frontier"`
	Leaves   string   `json:"leaves"` // base64 of the leaf hashes, 32 bytes each
}

func (j *witnessJournal) prover() (*witness.Prover, error) {
	var front, leaves []tlog.Hash
	for _, f := range j.Frontier {
		h, err := tlog.ParseHash(f)
		if err != nil {
			return nil, err
		}
		front = append(front, h)
	}
	raw, err := base64.StdEncoding.DecodeString(j.Leaves)
	if err != nil || len(raw)%32 != 0 {
		return nil, fmt.Errorf("witness leaves are not base64 of 32-byte hashes")
	}
	for i := 0; i < len(raw); i += 32 {
		var h tlog.Hash
		copy(h[:], raw[i:])
		leaves = append(leaves, h)
	}
	return witness.NewProverFrom(j.Base, front, leaves)
}

func readSealState(path string) (sealState, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return sealState{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var st sealState
	if err := dec.Decode(&st); err != nil {
		return sealState{}, fmt.Errorf("%s: not a seal state file: %v", path, err)
	}
	return st, nil
}

// resume returns the Builder of st, checking that the state is whole: the
// frontier's root is the state's root and the note signs that root at that
// size.
func (st sealState) resume(path string) (*checkpoint.Builder, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: damaged seal state: "+format, append([]any{path}, args...)...)
	}
	if err := checkpoint.CheckName(st.Origin); err != nil {
		return nil, bad("origin %q: %v", st.Origin, err)
	}
	if st.Size < 1 || !chain.IsHexHashString(st.LastHash) {
		return nil, bad("size %d, lastHash %q", st.Size, st.LastHash)
	}
	front := make([]tlog.Hash, len(st.Frontier))
	for i, s := range st.Frontier {
		h, err := tlog.ParseHash(s)
		if err != nil || h.String() != s {
			return nil, bad("frontier hash %d is not base64 SHA-256", i+1)
		}
		front[i] = h
	}
	b, err := checkpoint.ResumeBuilder(st.Origin, st.Size, front)
	if err != nil {
		return nil, bad("%v", err)
	}
	if r := b.Root().String(); r != st.Root {
		return nil, bad("the frontier's root %s is not the state's root %s", r, st.Root)
	}
	if body := fmt.Sprintf("%s\n%d\n%s\n\n", st.Origin, st.Size, st.Root); !strings.HasPrefix(st.Note, body) {
		return nil, bad("the note is not the checkpoint of size %d", st.Size)
	}
	return b, nil
}

// sealer holds the tree and signs checkpoints of it, from the stream's
// goroutine (every N records, end of input) and from the timer's.
type sealer struct {
	cfg    *sealConfig
	signer note.Signer
	out    *os.File

	mu       sync.Mutex
	b        *checkpoint.Builder
	lastHash string // recordHash of seq b.Size()
	sealed   int64  // size of the newest checkpoint written
	root     string // its root
	written  int    // checkpoints written by this run
	err      error  // the first failure to seal: sealing stops
	sub      *witness.Submitter
	cosigned int // cosigned notes appended
	em       *emitter
	pending  [][]byte // notes to write on stdout (--emit-checkpoints)
}

// add appends the record that follows the tree, and seals if the size is a
// multiple of --every.
func (s *sealer) add(seq int64, recordHash []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if err := s.b.Append(seq, recordHash); err != nil {
		return fmt.Errorf("internal error: the verified stream does not extend the tree: %w", err)
	}
	s.lastHash = string(recordHash)
	if s.sub != nil {
		raw, _ := hex.DecodeString(string(recordHash)) // Append checked the form
		s.sub.AppendLeaf(raw)
	}
	if s.cfg.every > 0 && s.b.Size()%s.cfg.every == 0 {
		return s.sealLocked()
	}
	return nil
}

// sealNow signs a checkpoint if records arrived since the last one.
func (s *sealer) sealNow() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.b.Size() > s.sealed {
		return s.sealLocked()
	}
	return nil
}

// sealLocked signs the tree as it stands, writes the state (so that a crash
// after it leaves a state whose note the next run re-appends to --out), and
// appends the checkpoint to --out, fsynced.
func (s *sealer) sealLocked() error {
	msg, err := s.b.Sign(s.signer)
	if err == nil && s.cfg.state != "" {
		st := sealState{Origin: s.b.Origin(), Size: s.b.Size(), Root: s.b.Root().String(), LastHash: s.lastHash, Note: string(msg)}
		for _, h := range s.b.Frontier() {
			st.Frontier = append(st.Frontier, h.String())
		}
		if s.sub != nil {
			base, front, leaves := s.sub.Snapshot()
			j := &witnessJournal{Base: base, Frontier: []string{}}
			for _, h := range front {
				j.Frontier = append(j.Frontier, h.String())
			}
			raw := make([]byte, 0, 32*len(leaves))
			for _, h := range leaves {
				raw = append(raw, h[:]...)
			}
			j.Leaves = base64.StdEncoding.EncodeToString(raw)
			st.Witness = j
		}
		data, _ := json.Marshal(st) // strings and ints always marshal
		if werr := writeFileAtomic(s.cfg.state, append(data, '\n'), 0o600); werr != nil {
			err = fmt.Errorf("write state: %w", werr)
		}
	}
	if err == nil {
		err = appendSynced(s.out, msg)
	}
	if err != nil {
		s.err = fmt.Errorf("seal size %d: %w", s.b.Size(), err)
		return s.err
	}
	s.sealed, s.root = s.b.Size(), s.b.Root().String()
	s.written++
	s.queueLocked(msg)
	if s.sub != nil {
		s.sub.Checkpoint(msg, s.sealed)
	}
	return nil
}

// appendCosigned appends a checkpoint note with witness cosignatures to
// --out: the same body as a line before it, more signatures.
func (s *sealer) appendCosigned(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	if err := appendSynced(s.out, msg); err != nil {
		s.err = fmt.Errorf("append cosigned checkpoint: %w", err)
		return
	}
	s.cosigned++
	s.queueLocked(msg)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func appendSynced(f *os.File, msg []byte) error {
	if err := checkpoint.AppendCheckpoint(f, msg); err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	return nil
}

// scanCheckpointFile counts the checkpoint lines of path (a missing file
// has none) and reports whether one of them is the note want.
func scanCheckpointFile(path, want string) (n int, found bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 4*checkpoint.MaxNoteSize)
	for sc.Scan() {
		var l checkpointLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Checkpoint == nil {
			continue // verify reports malformed lines; seal only appends
		}
		n++
		if *l.Checkpoint == want {
			found = true
		}
	}
	if err := sc.Err(); err != nil {
		return n, found, fmt.Errorf("read %s: %w", path, err)
	}
	return n, found, nil
}

// dedupWitnesses drops a witness given twice (same key): it is one witness.
func dedupWitnesses(ws []witness.Witness) []witness.Witness {
	var out []witness.Witness
	seen := map[string]bool{}
	for _, w := range ws {
		if !seen[w.String()] {
			seen[w.String()] = true
			out = append(out, w)
		}
	}
	return out
}

// witnessedBefore returns, per witness (by vkey), the largest size of
// origin it cosigned in the checkpoint file path: what the witness must
// still hold, so that a witness rolled back between runs is caught.
func witnessedBefore(path, origin string, wits []witness.Witness) (map[string]int64, error) {
	out := map[string]int64{}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var list []note.Verifier
	byName := map[string]string{}
	for _, w := range wits {
		list = append(list, w.Verifier)
		byName[fmt.Sprintf("%s+%08x", w.Name(), w.KeyHash())] = w.String()
	}
	vs := note.VerifierList(list...)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 4*checkpoint.MaxNoteSize)
	for sc.Scan() {
		var l checkpointLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Checkpoint == nil || !strings.HasPrefix(*l.Checkpoint, origin+"\n") {
			continue
		}
		cs, err := witness.Cosignatures([]byte(*l.Checkpoint), vs)
		if err != nil || len(cs) == 0 {
			continue // verify reports a bad cosignature
		}
		lines := strings.SplitN(*l.Checkpoint, "\n", 3)
		var size int64
		if _, err := fmt.Sscanf(lines[1], "%d", &size); err != nil {
			continue
		}
		for _, c := range cs {
			k := byName[c.Witness+"+"+c.KeyID]
			out[k] = max(out[k], size)
		}
	}
	return out, sc.Err()
}

func runSeal(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags, env := newFlagSet("seal", sealSynopsis, stderr)
	var c sealConfig
	flags.StringVar(&c.signerPath, "signer", "", "signer key: a file from keygen (mode 0600), or a secret reference: file:PATH, env:NAME, exec:COMMAND (the key text)")
	flags.StringVar(&c.extSigner, "external-signer", "", "sign with this command instead (KMS, HSM): message on stdin, base64 Ed25519 signature on stdout; needs --external-signer-key")
	flags.StringVar(&c.extKey, "external-signer-key", "", "the verifier key file of the --external-signer's key (each signature is checked against it)")
	flags.StringVar(&c.origin, "origin", "", "the log's origin, the first line of every checkpoint (default: the signer key's name)")
	flags.Int64Var(&c.every, "every", 10000, "sign when the tree's size is a multiple of N (0: not by count)")
	flags.DurationVar(&c.interval, "interval", time.Minute, "sign this often if records arrived since the last checkpoint (0: not by time)")
	flags.StringVar(&c.out, "out", "", "checkpoint file: each checkpoint is appended as one JSON line and fsynced")
	flags.StringVar(&c.state, "state", "", "seal state file: the tree's frontier at the last checkpoint, to resume from (mode 0600)")
	flags.IntVar(&c.maxLine, "max-line", ndjson.DefaultMaxLine, "maximum line length in bytes")
	flags.IntVar(&c.window, "window", 4096, "recent records remembered to tell a duplicate from an equivocation")
	flags.BoolVar(&c.quiet, "quiet", false, "no summary line on stderr")
	flags.Var(&c.witnesses, "witness", "a witness to cosign each checkpoint, as VKEY=URL (its cosignature/v1 key and submission URL; repeatable)")
	flags.Var(&c.witFiles, "witness-file", "a file of witnesses, one VKEY=URL a line ('#' comments; repeatable)")
	flags.DurationVar(&c.witFlush, "witness-flush", 10*time.Second, "at the end of a run, how long to wait for witnesses that are behind")
	flags.BoolVar(&c.emit, "emit-checkpoints", false, "also write each checkpoint and cosigned note on stdout as a {\"checkpoint\":...} line, for audit-batch and audit-ship to carry to the SIEM")
	c.metrics.Register(flags)
	if err := parse(flags, args, env, 0); err != nil {
		return err
	}
	var wits []witness.Witness
	for _, w := range c.witnesses {
		pw, err := witness.ParseWitness(w)
		if err == nil && pw.URL == "" {
			err = fmt.Errorf("%s: no URL (want VKEY=URL)", pw.Name())
		}
		if err != nil {
			return cli.Usagef("--witness: %v", err)
		}
		wits = append(wits, pw)
	}
	for _, f := range c.witFiles {
		ws, err := witness.ReadWitnessFile(f)
		if err != nil {
			return cli.Usagef("--witness-file: %v", err)
		}
		for _, w := range ws {
			if w.URL == "" {
				return cli.Usagef("--witness-file %s: witness %s has no URL (want VKEY=URL)", f, w.Name())
			}
		}
		wits = append(wits, ws...)
	}
	wits = dedupWitnesses(wits)
	switch {
	case c.signerPath == "" && c.extSigner == "":
		return cli.Usagef("--signer is required (or --external-signer with --external-signer-key)")
	case c.signerPath != "" && c.extSigner != "":
		return cli.Usagef("--signer and --external-signer exclude each other")
	case (c.extSigner == "") != (c.extKey == ""):
		return cli.Usagef("--external-signer and --external-signer-key go together")
	case c.out == "":
		return cli.Usagef("--out is required")
	case c.every < 0 || c.interval < 0:
		return cli.Usagef("--every and --interval must not be negative")
	case c.state != "" && c.state == c.out:
		return cli.Usagef("--state and --out must be different files")
	}
	var signer note.Signer
	var err error
	if c.extSigner != "" {
		vk, rerr := os.ReadFile(c.extKey)
		if rerr != nil {
			return exitcode.New(exitcode.Usage, fmt.Errorf("--external-signer-key: %w", rerr))
		}
		signer, err = checkpoint.NewExternalSigner(c.extSigner, string(vk))
	} else {
		signer, err = checkpoint.OpenSigner(ctx, c.signerPath)
	}
	if err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	if c.origin == "" {
		c.origin = signer.Name()
	}
	if err := checkpoint.CheckName(c.origin); err != nil {
		return cli.Usagef("--origin %q: %v", c.origin, err)
	}

	s := &sealer{cfg: &c, signer: signer, b: checkpoint.NewBuilder(c.origin), em: &emitter{on: c.emit}}
	var st sealState
	if c.state != "" {
		st, err = readSealState(c.state)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			n, _, serr := scanCheckpointFile(c.out, "")
			if serr != nil {
				return serr
			}
			if n > 0 {
				return cli.Usagef("the seal state %s is missing but %s already holds %d checkpoints: a sealer that lost its state would sign whatever the log holds now; restore the state file, or seal into a new checkpoint file", c.state, c.out, n)
			}
		case err != nil:
			return err
		default:
			if st.Origin != c.origin {
				return cli.Usagef("the seal state %s is of origin %q, not %q", c.state, st.Origin, c.origin)
			}
			if s.b, err = st.resume(c.state); err != nil {
				return err
			}
			s.lastHash, s.sealed, s.root = st.LastHash, st.Size, st.Root
		}
	}
	_, statErr := os.Stat(c.out)
	out, err := os.OpenFile(c.out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open checkpoint file: %w", err)
	}
	defer out.Close()
	if errors.Is(statErr, fs.ErrNotExist) {
		// A new file: make its directory entry durable before any
		// checkpoint is counted as written to it.
		if err := syncDir(filepath.Dir(c.out)); err != nil {
			return err
		}
	}
	s.out = out
	if st.Size > 0 {
		// The state is written before the checkpoint is appended: a crash
		// between the two leaves the state's note missing from --out.
		_, found, err := scanCheckpointFile(c.out, st.Note)
		if err != nil {
			return err
		}
		if !found {
			if err := appendSynced(out, []byte(st.Note)); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "%s: %s lacked the checkpoint of size %d that %s holds (a stop between the two writes); appended it\n", prog, c.out, st.Size, c.state)
		}
	}

	ms, err := c.metrics.Start(ctx, prog, c.metrics.Labels("", ""), stderr)
	if err != nil {
		return err
	}
	defer ms.Close()
	c.flow = ms.Flow()
	ms.CounterFunc(metrics.NameCheckpointsWritten, "Checkpoints audit-checkpoint seal signed and appended to --out (fsynced).", func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(s.written)
	})
	ms.GaugeFunc(metrics.NameSealedSize, "Tree size of the newest checkpoint seal signed (or resumed from --state): records up to this seq are sealed.", func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(s.sealed)
	})
	stdout = ms.Stdout(stdout)
	s.em.w = ndjson.NewWriter(stdout, 0)
	defer func() { s.em.replay.close() }()

	// Witnesses: asked in the background after each checkpoint; a witness
	// that is down never holds up the records.
	var alarms []string
	var alarmMu sync.Mutex
	subCtx, subCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer subCancel()
	var subWG sync.WaitGroup
	if len(wits) > 0 {
		p, err := witness.NewProver(s.b.Size(), s.b.Frontier())
		if j := st.Witness; j != nil && err == nil {
			p, err = j.prover()
			if err == nil && p.Size() != s.b.Size() {
				err = fmt.Errorf("its witness leaves end at %d, not at the state's size %d", p.Size(), s.b.Size())
			}
			if err != nil {
				err = fmt.Errorf("%s: damaged seal state: %v", c.state, err)
			}
		}
		if err != nil {
			return exitcode.New(exitcode.Failure, err)
		}
		before, err := witnessedBefore(c.out, c.origin, wits)
		if err != nil {
			return fmt.Errorf("read %s: %w", c.out, err)
		}
		sub := &witness.Submitter{Client: &witness.Client{UserAgent: "auditpipe audit-checkpoint"}, Witnesses: wits, Cosigned: before,
			OnCosigned: func(size int64, msg []byte) { s.appendCosigned(msg); s.flushNotes() },
			OnAlarm: func(w witness.Witness, err error) {
				alarmMu.Lock()
				alarms = append(alarms, err.Error())
				alarmMu.Unlock()
				fmt.Fprintf(stderr, "%s: error witness_refused: %v; this witness is not asked again by this run\n", prog, err)
			},
			OnBehind: func(w witness.Witness, err error) {
				fmt.Fprintf(stderr, "%s: warning witness_behind: %v; this witness is not asked again by this run\n", prog, err)
			},
			OnRetry: func(w witness.Witness, err error, next time.Duration) {
				fmt.Fprintf(stderr, "%s: warning witness_unreachable: %v; retrying the newest checkpoint in %s (records keep flowing)\n", prog, err, next)
			}}
		sub.Start(p)
		s.mu.Lock()
		s.sub = sub
		if st.Note != "" && st.Size == s.sealed {
			sub.Checkpoint([]byte(st.Note), st.Size)
		}
		s.mu.Unlock()
		ms.GaugeFunc(metrics.NameUnwitnessedSeconds, "Seconds since the oldest checkpoint some configured witness has not cosigned was signed (0: every witness cosigned the newest).", func() float64 {
			return sub.Unwitnessed().Seconds()
		})
		ms.GaugeFunc(metrics.NameWitnessedSize, "The largest tree size every configured witness cosigned in this run.", func() float64 {
			return float64(sub.WitnessedSize())
		})
		ms.CounterFunc(metrics.NameWitnessRefusals, "Witnesses that refused a checkpoint (split view, rollback, corrupt cosignature): an alarm, never retried.", func() float64 {
			return float64(sub.Refusals())
		})
		subWG.Add(1)
		go func() { defer subWG.Done(); sub.Run(subCtx) }()
	}

	// The timer: sign every --interval, and at once on the first signal.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var tick <-chan time.Time
		if c.interval > 0 {
			t := time.NewTicker(c.interval)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-tick:
				s.sealNow()
				s.flushNotes()
			case <-ctx.Done():
				s.sealNow()
				s.flushNotes()
				return
			case <-done:
				return
			}
		}
	}()

	start := time.Now()
	res, runErr := c.stream(ctx, s, st, stdin, stdout, stderr)
	close(done)
	wg.Wait()
	// At the end of input, on a signal, after a chain break (what came
	// before it verified) or a closed stdout: seal what the tree holds.
	if err := s.sealNow(); err != nil && runErr == nil {
		runErr = err
	}
	if s.sub != nil {
		subCancel()
		subWG.Wait()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.witFlush)
		s.sub.Flush(fctx)
		cancel()
		if err := s.flushNotes(); err != nil && runErr == nil {
			runErr = err
		}
		for _, w := range s.sub.Statuses() {
			if w.Refused == nil && w.Size < s.sealed && !c.quiet {
				fmt.Fprintf(stderr, "%s: warning unwitnessed: witness %s has not cosigned the newest checkpoint, size %d (last error: %v); the next run asks again with a proof from the size it holds\n", prog, w.Name, s.sealed, w.LastError)
			}
		}
	}
	if err := s.flushNotes(); err != nil && runErr == nil {
		runErr = err
	}
	if !c.quiet {
		fmt.Fprintf(stderr, "%s: %s\n", prog, s.summary(res, st.Size, time.Since(start)))
	}
	if runErr != nil {
		return runErr
	}
	if res.failed != "" {
		return exitcode.Errorf(exitcode.Verify, "chain verification failed: %s; nothing after seq %d was sealed", res.failed, s.sealed)
	}
	if len(alarms) > 0 {
		return exitcode.Errorf(exitcode.Verify, "%d witness(es) refused a checkpoint: %s", len(alarms), strings.Join(alarms, "; "))
	}
	return nil
}

// streamResult is what the stream loop saw.
type streamResult struct {
	records  int64  // lines passed through
	first    int64  // the first seq
	last     int64  // the last seq passed through
	replayed int64  // records the state already covered
	failed   string // the first chain error, if any
	marks    int64  // mark lines dropped
}

// stream runs the filter: verify each line's chain, pass it on, and add
// the records past the state's size to the tree.
func (c *sealConfig) stream(ctx context.Context, s *sealer, st sealState, stdin io.Reader, stdout, stderr io.Writer) (res streamResult, err error) {
	r, err := ndjson.NewReader(stdin, ndjson.Options{MaxLine: c.maxLine, NoValidate: true})
	if err != nil {
		return res, exitcode.New(exitcode.Input, fmt.Errorf("stdin: %w", err))
	}
	defer r.Close()
	out := s.em.w
	defer func() {
		if ferr := out.Flush(); err == nil && ferr != nil {
			err = fmt.Errorf("write stdout: %w", ferr)
		}
	}()
	sealedAtStart := st.Size
	var (
		p      chain.LineParser
		v      *chain.Verifier
		replay bool // the stream began inside the sealed part
	)
	report := func(found []chain.Finding) {
		for _, f := range found {
			if replay && f.Reason == chain.ReasonUnanchored {
				continue // the replay is tied to the state by the hash at its size instead
			}
			fmt.Fprintf(stderr, "%s: chain: %s\n", prog, f)
			if f.Severity == chain.SeverityError && res.failed == "" {
				res.failed = f.String()
			}
		}
	}
	defer func() {
		if v != nil {
			report(v.Finish())
		}
		if sealedAtStart > 0 && res.last > 0 && res.last < sealedAtStart && res.failed == "" && err == nil {
			fmt.Fprintf(stderr, "%s: warning: the stream ended at seq %d, before the sealed size %d: nothing to seal; if it was the whole log, rows were cut off its end (run verify)\n",
				prog, res.last, sealedAtStart)
		}
	}()
	for {
		if ctx.Err() != nil {
			return res, nil // asked to stop: the caller seals what the tree holds
		}
		line, rerr := r.Next()
		if rerr == io.EOF {
			return res, nil
		}
		var le *ndjson.LineError
		if rerr != nil && !errors.As(rerr, &le) {
			return res, fmt.Errorf("read stdin: %w", rerr)
		}
		if le == nil && framing.IsMark(line.Bytes) {
			res.marks++ // audit-read's control line for audit-verify: not a record, never sealed nor passed on
			continue
		}
		rec, perr := p.Parse(line.Bytes)
		if v == nil {
			anchor, err := c.startAt(rec, perr, le, s, sealedAtStart)
			if err != nil {
				return res, err
			}
			replay = perr == nil && le == nil && rec.Seq <= sealedAtStart
			v = chain.NewVerifier(chain.Options{Anchor: anchor, Window: c.window})
			res.first = rec.Seq
			if c.emit && perr == nil && le == nil && sealedAtStart > 0 {
				if err := c.startReplay(s, rec.Seq); err != nil {
					return res, err
				}
			}
		}
		var pass bool
		if le != nil {
			report(v.LineProblem(le.Num, chain.LineReason(le.Kind), le.Error()))
		} else {
			var found []chain.Finding
			pass, found = v.Check(line.Num, line.Bytes)
			report(found)
		}
		if v.Failed() {
			return res, nil // fail-closed: this line is not passed on
		}
		if !pass {
			continue // a duplicate (warning): passed on once only
		}
		s.em.mu.Lock()
		err := c.passRecord(s, rec, line.Bytes, sealedAtStart, st, &res, stderr)
		s.em.mu.Unlock()
		if err != nil || res.failed != "" {
			return res, err
		}
		res.records++
		res.last = rec.Seq
		if r.Buffered() == 0 {
			// Input has paused: pass on what we hold so a follower sees it now.
			if err := out.Flush(); err != nil {
				return res, fmt.Errorf("write stdout: %w", err)
			}
		}
	}
}

// passRecord adds a verified record to the tree (unless the state covers
// it) and writes it on, with the checkpoint lines due before and after it
// (--emit-checkpoints). s.em.mu is held.
func (c *sealConfig) passRecord(s *sealer, rec chain.Record, line []byte, sealedAtStart int64, st sealState, res *streamResult, stderr io.Writer) error {
	out := s.em.w
	if err := s.writePending(); err != nil {
		return err
	}
	switch {
	case rec.Seq < sealedAtStart:
		res.replayed++
	case rec.Seq == sealedAtStart:
		res.replayed++
		if string(rec.RecordHash) != st.LastHash {
			res.failed = fmt.Sprintf("seq %d has recordHash %s, but the tree sealed at size %d ends with %s", rec.Seq, elide.Hash(rec.RecordHash), sealedAtStart, elide.Hash(st.LastHash))
			fmt.Fprintf(stderr, "%s: error: %s: the log was rewritten at or before seq %d since it was sealed, or this is another log\n", prog, res.failed, rec.Seq)
			return nil
		}
	default:
		if err := s.add(rec.Seq, rec.RecordHash); err != nil {
			return err
		}
	}
	c.flow.Read(len(line) + 1)
	if err := out.Write(line); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	c.flow.Wrote(len(line)+1, rec.Seq)
	if s.em.replay != nil {
		if err := s.em.replay.upTo(s.em, rec.Seq); err != nil {
			return err
		}
	}
	return s.writePending()
}

// startReplay opens --out for the notes a stream starting at seq first
// must carry again (see emitter), and writes those due before it.
func (c *sealConfig) startReplay(s *sealer, first int64) error {
	r, older, err := openReplay(c.out, first)
	if err != nil {
		return fmt.Errorf("read %s: %w", c.out, err)
	}
	s.em.mu.Lock()
	defer s.em.mu.Unlock()
	s.em.replay = r
	if older != nil {
		if err := s.em.writeNote(older); err != nil {
			return err
		}
	}
	return r.upTo(s.em, first-1)
}

// startAt checks where the stream starts against the tree and returns the
// chain anchor for its first record.
func (c *sealConfig) startAt(rec chain.Record, perr error, le *ndjson.LineError, s *sealer, sealed int64) (*chain.Anchor, error) {
	if perr != nil || le != nil {
		return nil, nil // the verifier reports the line
	}
	switch seq := rec.Seq; {
	case sealed == 0 && seq != 1:
		if c.state == "" {
			return nil, exitcode.Errorf(exitcode.Input, "the stream starts at seq %d, but the tree starts at seq 1 and there is no seal state to resume from: give the whole log (audit-read --db DB, without --from-seq or --from-cursor), or keep the tree between runs with --state", seq)
		}
		return nil, exitcode.Errorf(exitcode.Input, "the stream starts at seq %d, but the tree starts at seq 1 and the seal state %s is new: give the whole log for the first run (audit-read --db DB, without --from-seq or --from-cursor)", seq, c.state)
	case sealed > 0 && seq > sealed+1:
		return nil, exitcode.Errorf(exitcode.Input, "the stream starts at seq %d, but the seal state %s ends at seq %d: seqs %d..%d were never sealed; seal them first (audit-read --db DB --from-seq %d --to-seq %d | audit-checkpoint seal ... >/dev/null), or start the stream at seq %d or before",
			seq, c.state, sealed, sealed+1, seq-1, sealed+1, seq-1, sealed+1)
	case sealed > 0 && seq == sealed+1:
		return &chain.Anchor{Seq: sealed, Hash: s.lastHash}, nil
	}
	return nil, nil // from seq 1, or a replay of sealed records
}

func (s *sealer) summary(res streamResult, sealedAtStart int64, d time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	b.WriteString(cli.Count(res.records, "record", ""))
	if res.records > 0 {
		if res.first == res.last {
			fmt.Fprintf(&b, " (seq %d", res.first)
		} else {
			fmt.Fprintf(&b, " (seq %d..%d", res.first, res.last)
		}
		if res.replayed > 0 {
			fmt.Fprintf(&b, ", %d already sealed", res.replayed)
		}
		b.WriteByte(')')
	}
	switch {
	case s.written > 0:
		fmt.Fprintf(&b, "; %s appended to %s, the newest of size %d (root %s)", cli.Count(int64(s.written), "checkpoint", ""), s.cfg.out, s.sealed, s.root)
	case s.sealed > 0:
		fmt.Fprintf(&b, "; nothing new to seal: the newest checkpoint is of size %d", s.sealed)
	default:
		b.WriteString("; nothing to seal")
	}
	if res.marks == 1 {
		b.WriteString("; 1 mark line dropped")
	} else if res.marks > 1 {
		fmt.Fprintf(&b, "; %d mark lines dropped", res.marks)
	}
	if secs := d.Seconds(); secs > 0 && res.records > 0 {
		fmt.Fprintf(&b, "; %.0f records/s", float64(res.records)/secs)
	}
	return b.String()
}
