package auditcheckpoint

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/checkpoint"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/elide"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/ndjson"
	"github.com/auditpipe/auditpipe/lib/witness"
)

const proveSynopsis = `usage: audit-checkpoint prove --verifier FILE... --checkpoints FILE --seq N [--size S] [--out FILE] [RECORDS ...]

Reads the log's record lines from seq 1 (stdin, or the files named) and
writes an inclusion proof bundle for the record with seq N (one JSON line,
to stdout or --out) against the newest checkpoint in --checkpoints that a
trusted key signed, or the one of size S. The bundle holds the record in
canonical form, its prevHash, the proof and the signed checkpoint:
check-proof verifies it offline with the verifier key alone. An erased row
(a tombstone) is proven by its recordHash alone.

Examples:
  audit-read --db audit.db --to-seq 300000 | audit-checkpoint prove --verifier ckpt.pub --checkpoints checkpoints.ndjson --seq 4242 > proof-4242.json
  audit-checkpoint check-proof --verifier ckpt.pub proof-4242.json`

const checkProofSynopsis = `usage: audit-checkpoint check-proof --verifier FILE... [--origin NAME] [PROOF]

Verifies an inclusion proof bundle (PROOF, or stdin) offline: the
checkpoint's signature by a trusted key, the inclusion proof against its
root, and the record against its recordHash when the bundle carries it.
On success prints one JSON line on stdout:

  {"seq":42,"recordHash":"…","record":true,"origin":"…","size":300,"root":"…"}

and exits 0; a proof that does not verify exits 3.

Example:
  audit-checkpoint check-proof --verifier ckpt.pub proof-4242.json`

func runProve(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags, env := newFlagSet("prove", proveSynopsis, stderr)
	var (
		verifiers fileList
		cpFile    = flags.String("checkpoints", "", "checkpoint file (NDJSON, as seal writes it)")
		seq       = flags.Int64("seq", 0, "the seq of the record to prove")
		size      = flags.Int64("size", 0, "prove against the checkpoint of this size (default: the newest)")
		origin    = flags.String("origin", "", "the log's origin (default: the verifier keys' name)")
		out       = flags.String("out", "", "write the bundle to this file (default stdout)")
		maxLine   = flags.Int("max-line", ndjson.DefaultMaxLine, "maximum record line length in bytes")
	)
	flags.Var(&verifiers, "verifier", "trusted verifier key file (repeatable): only checkpoints they verify are used")
	var wit witnessFlags
	wit.register(flags, false)
	if err := parse(flags, args, env, -1); err != nil {
		return err
	}
	wvs, quorum, err := wit.load()
	if err != nil {
		return err
	}
	switch {
	case len(verifiers) == 0:
		return cli.Usagef("--verifier is required")
	case *cpFile == "":
		return cli.Usagef("--checkpoints is required")
	case *seq < 1:
		return cli.Usagef("--seq is required and must be at least 1")
	case *size < 0:
		return cli.Usagef("--size must not be negative")
	}
	vs, o, err := logKeys(verifiers, *origin)
	if err != nil {
		return err
	}
	cp, err := pickCheckpoint(ctx, *cpFile, vs, o, *size, wvs, quorum, stderr)
	if err != nil {
		return err
	}
	if *seq > cp.Size {
		return cli.Usagef("seq %d is not covered by the checkpoint of size %d: seal more, or prove an earlier record", *seq, cp.Size)
	}
	inputs := flags.Args()
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	store, line, err := readStore(ctx, inputs, stdin, *maxLine, cp.Size, *seq)
	if err != nil {
		return err
	}
	if store.Size() < cp.Size {
		return exitcode.Errorf(exitcode.Verify, "the log has %d records but the checkpoint has size %d: rows were cut off its end, or the input is not the whole log (run verify)", store.Size(), cp.Size)
	}
	p, err := checkpoint.NewProof(store, cp, line)
	if errors.Is(err, checkpoint.ErrRecordMismatch) {
		var lp chain.LineParser
		rec, _ := lp.Parse(line) // NewProof parsed it already
		fmt.Fprintf(stderr, "%s: seq %d does not hash to its recordHash (an erased row?): the bundle proves its recordHash only\n", prog, *seq)
		p, err = checkpoint.NewHashProof(store, cp, *seq, string(rec.RecordHash))
	}
	if errors.Is(err, checkpoint.ErrNotIncluded) {
		return exitcode.Errorf(exitcode.Verify, "the log does not match the checkpoint of size %d (run verify): %v", cp.Size, err)
	}
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := checkpoint.WriteProof(&buf, p); err != nil {
		return err
	}
	if *out != "" {
		if err := writeFileAtomic(*out, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write proof: %w", err)
		}
	} else if _, err := stdout.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	fmt.Fprintf(stderr, "%s: proof of seq %d (recordHash %s) in %s at size %d\n", prog, p.Seq, elide.Hash(p.RecordHash), cp.Origin, cp.Size)
	return nil
}

// pickCheckpoint returns the checkpoint of origin of the given size, or the
// newest, among those of the file that trusted keys signed. Two different
// roots for that size are an error: verify tells the rest.
//
// Key rotation lines are followed first, as verify follows them. With a
// quorum, only checkpoint lines that carry the log's signature and quorum
// witness cosignatures are candidates.
func pickCheckpoint(ctx context.Context, path string, vs note.Verifiers, origin string, size int64, wvs note.Verifiers, quorum int, stderr io.Writer) (checkpoint.Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return checkpoint.Checkpoint{}, exitcode.New(exitcode.Input, fmt.Errorf("open checkpoints: %w", err))
	}
	defer f.Close()
	r, err := ndjson.NewReader(f, ndjson.Options{MaxLine: 4 * checkpoint.MaxNoteSize})
	if err != nil {
		return checkpoint.Checkpoint{}, exitcode.New(exitcode.Input, fmt.Errorf("%s: %w", path, err))
	}
	defer r.Close()
	var (
		best      checkpoint.Checkpoint
		found     bool
		skipped   int
		first     string
		lines     []checkpointLine
		nums      []int64
		rotations [][]byte
		unwit     int
	)
	skip := func(num int64, why error) {
		if skipped == 0 {
			first = fmt.Sprintf("line %d: %v", num, why)
		}
		skipped++
	}
	for {
		if err := ctx.Err(); err != nil {
			return checkpoint.Checkpoint{}, err
		}
		line, err := r.Next()
		if err == io.EOF {
			break
		}
		var le *ndjson.LineError
		if errors.As(err, &le) {
			skip(le.Num, le)
			continue
		}
		if err != nil {
			return checkpoint.Checkpoint{}, fmt.Errorf("read %s: %w", path, err)
		}
		var l checkpointLine
		if err := json.Unmarshal(line.Bytes, &l); err == nil && l.Rotation != nil {
			rotations = append(rotations, []byte(*l.Rotation))
			continue
		}
		if err := json.Unmarshal(line.Bytes, &l); err != nil || l.Checkpoint == nil {
			skip(line.Num, errors.New(`not a {"checkpoint":…} line`))
			continue
		}
		lines, nums = append(lines, l), append(nums, line.Num)
	}
	if len(rotations) > 0 {
		var problems []checkpoint.Finding
		vs, problems = checkpoint.FollowRotations(vs, origin, rotations)
		for _, p := range problems {
			fmt.Fprintf(stderr, "%s: warning: a key rotation in %s was not followed: %s\n", prog, path, p.Detail)
		}
	}
	for i, l := range lines {
		num := nums[i]
		cp, err := checkpoint.Open([]byte(*l.Checkpoint), vs)
		if err != nil {
			skip(num, err)
			continue
		}
		if quorum > 0 {
			cs, err := witness.Cosignatures(cp.Note, wvs)
			if err != nil {
				skip(num, err)
				continue
			}
			if len(cs) < quorum {
				unwit++
				continue
			}
		}
		if cp.Origin != origin || size > 0 && cp.Size != size || found && cp.Size < best.Size {
			continue
		}
		if found && cp.Size == best.Size && cp.Root != best.Root {
			return checkpoint.Checkpoint{}, exitcode.Errorf(exitcode.Verify, "two checkpoints of size %d in %s have different roots (equivocation): run verify", cp.Size, path)
		}
		best, found = cp, true
	}
	if skipped > 0 {
		fmt.Fprintf(stderr, "%s: warning: skipped %d checkpoint lines of %s that do not verify (first: %s): run verify\n", prog, skipped, path, first)
	}
	if !found {
		what := "any size"
		if size > 0 {
			what = fmt.Sprintf("size %d", size)
		}
		if quorum > 0 {
			return checkpoint.Checkpoint{}, exitcode.Errorf(exitcode.Verify, "%s holds no checkpoint of %s of %s signed by a trusted key with %d witness cosignatures (%d signed by the log alone): unwitnessed", path, origin, what, quorum, unwit)
		}
		return checkpoint.Checkpoint{}, cli.Usagef("%s holds no checkpoint of %s of %s signed by a trusted key", path, origin, what)
	}
	return best, nil
}

// readStore reads record lines from seq 1 into a MemStore up to size
// records (the rest is read and dropped, so that the stage before does not
// see a closed pipe) and returns the line of seq.
func readStore(ctx context.Context, inputs []string, stdin io.Reader, maxLine int, size, seq int64) (*checkpoint.MemStore, []byte, error) {
	var (
		store   checkpoint.MemStore
		p       chain.LineParser
		recLine []byte
	)
	for _, name := range inputs {
		src := stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return nil, nil, exitcode.New(exitcode.Input, fmt.Errorf("open input: %w", err))
			}
			defer f.Close()
			src = f
		}
		r, err := ndjson.NewReader(src, ndjson.Options{MaxLine: maxLine})
		if err != nil {
			return nil, nil, exitcode.New(exitcode.Input, fmt.Errorf("%s: %w", displayName(name), err))
		}
		defer r.Close()
		for {
			line, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var le *ndjson.LineError
				if errors.As(err, &le) {
					err = exitcode.New(exitcode.Input, err)
				}
				return nil, nil, fmt.Errorf("%s: %w", displayName(name), err)
			}
			if framing.IsMark(line.Bytes) {
				continue // audit-read's control line for audit-verify: not a record
			}
			if line.Num%4096 == 0 && ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			if store.Size() >= size {
				continue
			}
			rec, err := p.Parse(line.Bytes)
			if err != nil {
				return nil, nil, exitcode.Errorf(exitcode.Input, "%s line %d: %v", displayName(name), line.Num, err)
			}
			if rec.Seq >= 1 && rec.Seq <= store.Size() {
				var raw [32]byte
				hex.Decode(raw[:], rec.RecordHash) // the parser checked: 64 lowercase hex
				hs, err := store.ReadHashes([]int64{tlog.StoredHashIndex(0, rec.Seq-1)})
				if err == nil && hs[0] == tlog.RecordHash(raw[:]) {
					continue // an exact replay
				}
				return nil, nil, exitcode.Errorf(exitcode.Verify, "%s line %d: seq %d again with a different recordHash (run verify)", displayName(name), line.Num, rec.Seq)
			}
			if rec.Seq != store.Size()+1 {
				return nil, nil, exitcode.Errorf(exitcode.Input, "%s line %d: seq %d, want seq %d: prove needs the log from seq 1, in order", displayName(name), line.Num, rec.Seq, store.Size()+1)
			}
			if err := store.Append(rec.RecordHash); err != nil {
				return nil, nil, err
			}
			if rec.Seq == seq {
				recLine = bytes.Clone(line.Bytes)
			}
		}
	}
	return &store, recLine, nil
}

func runCheckProof(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags, env := newFlagSet("check-proof", checkProofSynopsis, stderr)
	var verifiers fileList
	flags.Var(&verifiers, "verifier", "trusted verifier key file (repeatable)")
	origin := flags.String("origin", "", "the log's origin the proof must be of (default: the verifier keys' name)")
	var wit witnessFlags
	wit.register(flags, false)
	if err := parse(flags, args, env, 1); err != nil {
		return err
	}
	wvs, quorum, err := wit.load()
	if err != nil {
		return err
	}
	if len(verifiers) == 0 {
		return cli.Usagef("--verifier is required")
	}
	vs, o, err := logKeys(verifiers, *origin)
	if err != nil {
		return err
	}
	name := "-"
	if flags.NArg() == 1 {
		name = flags.Arg(0)
	}
	src := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return exitcode.New(exitcode.Input, fmt.Errorf("open proof: %w", err))
		}
		defer f.Close()
		src = f
	}
	data, err := io.ReadAll(io.LimitReader(src, checkpoint.MaxProofSize+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", displayName(name), err)
	}
	seq, recordHash, cp, err := checkpoint.VerifyProof(bytes.NewReader(data), vs)
	if err != nil {
		return exitcode.Errorf(exitcode.Verify, "%s does not verify: %v", displayName(name), err)
	}
	if cp.Origin != o {
		return exitcode.Errorf(exitcode.Verify, "%s proves a record of %q, not of %q", displayName(name), cp.Origin, o)
	}
	if quorum > 0 {
		cs, err := witness.Cosignatures(cp.Note, wvs)
		if err != nil {
			return exitcode.Errorf(exitcode.Verify, "%s does not verify: bad_cosignature: %v", displayName(name), err)
		}
		if len(cs) < quorum {
			return exitcode.Errorf(exitcode.Verify, "%s does not verify: unwitnessed: its checkpoint (size %d) carries %d of the %d witness cosignatures required", displayName(name), cp.Size, len(cs), quorum)
		}
	}
	p, err := checkpoint.ParseProof(bytes.NewReader(data)) // VerifyProof parsed it: no error
	if err != nil {
		return err
	}
	res := struct {
		Seq        int64  `json:"seq"`
		RecordHash string `json:"recordHash"`
		Record     bool   `json:"record"`
		Origin     string `json:"origin"`
		Size       int64  `json:"size"`
		Root       string `json:"root"`
	}{seq, recordHash, p.Record != nil, cp.Origin, cp.Size, cp.Root.String()}
	b, _ := json.Marshal(res)
	if _, err := stdout.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	what := "its recordHash only (no record content in the bundle)"
	if p.Record != nil {
		what = "record content and recordHash"
	}
	fmt.Fprintf(stderr, "%s: proof OK: seq %d (recordHash %s; %s) is in %s at size %d, signed by a trusted key\n",
		prog, seq, elide.Hash(recordHash), what, cp.Origin, cp.Size)
	return nil
}
