package auditcheckpoint

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/checkpoint"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

const checkStoreSynopsis = `usage: audit-checkpoint check-store --verifier FILE... --checkpoints FILE [--reference FILE] [--every N] [flags] [RECORDS ...]

Checks a store's copy of the log (a SIEM's, fetched back with audit-fetch:
record lines in seq order on stdin or in the files) against the checkpoints
the store holds (--checkpoints: {"checkpoint":…} lines), and names what the
store lost as ranges of seq: store_missing_records (seqs A..B, and the
checkpoint that signed them), store_missing_checkpoint (a checkpoint of
--reference, the shipper's own checkpoint file, or a multiple of --every
that the store lacks), store_altered (a record whose content or chain link
differs, a root at a signed size that is not the signed one), and with
--witness-key, unwitnessed (records past the newest checkpoint the store
holds with the quorum). Exit 3 if there is any finding.

Example:
  audit-fetch --kind splunk --url http://vlogs:9428 --checkpoints siem-checkpoints.ndjson > siem.ndjson
  audit-checkpoint check-store --verifier ckpt.pub --witness-key witnesses.txt --checkpoints siem-checkpoints.ndjson \
    --reference /var/lib/auditpipe/checkpoints.ndjson --every 10000 siem.ndjson`

func runCheckStore(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags, env := newFlagSet("check-store", checkStoreSynopsis, stderr)
	var verifiers fileList
	flags.Var(&verifiers, "verifier", "trusted verifier key file (repeatable)")
	cpFile := flags.String("checkpoints", "", "the store's checkpoints ({\"checkpoint\":…} lines; rotation lines are followed)")
	refFile := flags.String("reference", "", "a checkpoint file the store must hold every checkpoint of (the shipper's --out)")
	every := flags.Int64("every", 0, "seal's --every: the store must hold a checkpoint at each multiple (0: not checked)")
	origin := flags.String("origin", "", "the log's origin (default: the verifier keys' name)")
	maxLine := flags.Int("max-line", ndjson.DefaultMaxLine, "maximum record line length in bytes")
	var wit witnessFlags
	wit.register(flags, false)
	if err := parse(flags, args, env, -1); err != nil {
		return err
	}
	if len(verifiers) == 0 || *cpFile == "" {
		return cli.Usagef("--verifier and --checkpoints are required")
	}
	if *every < 0 {
		return cli.Usagef("--every must not be negative")
	}
	vs, o, err := logKeys(verifiers, *origin)
	if err != nil {
		return err
	}
	wvs, quorum, err := wit.load()
	if err != nil {
		return err
	}
	if flags.NArg() == 0 {
		// audit-fetch --checkpoints F | check-store --checkpoints F: audit-fetch
		// writes F whole before its first record line, so F is read once the
		// first byte of stdin (or its end) has arrived, never half written.
		br := bufio.NewReader(stdin)
		br.Peek(1)
		stdin = br
	}
	notes, rotations, err := readNotes(*cpFile)
	if err != nil {
		return err
	}
	if len(rotations) > 0 {
		var problems []checkpoint.Finding
		vs, problems = checkpoint.FollowRotations(vs, o, rotations)
		for _, p := range problems {
			fmt.Fprintf(stderr, "%s: warning: a key rotation in %s was not followed: %s\n", prog, *cpFile, p.Detail)
		}
	}
	opt := checkpoint.StoreOptions{Verifiers: vs, Origin: o, Witnesses: wvs, Quorum: quorum, Every: *every}
	if *refFile != "" {
		ref, _, err := readNotes(*refFile)
		if err != nil {
			return err
		}
		for _, n := range ref {
			opt.Reference = append(opt.Reference, n.msg)
		}
	}
	sc, err := checkpoint.NewStoreChecker(opt)
	if err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	for _, n := range notes {
		sc.AddCheckpoint(n.msg, fmt.Sprintf("the checkpoint at line %d", n.line))
	}
	inputs := flags.Args()
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	var p chain.LineParser
	var records int64
	for _, name := range inputs {
		src := stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return exitcode.New(exitcode.Input, fmt.Errorf("open input: %w", err))
			}
			defer f.Close()
			src = f
		}
		r, err := ndjson.NewReader(src, ndjson.Options{MaxLine: *maxLine, NoValidate: true})
		if err != nil {
			return exitcode.New(exitcode.Input, fmt.Errorf("%s: %w", displayName(name), err))
		}
		defer r.Close()
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			line, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return exitcode.New(exitcode.Input, fmt.Errorf("%s: %w", displayName(name), err))
			}
			if framing.IsMark(line.Bytes) {
				continue
			}
			rec, err := p.Parse(line.Bytes)
			if err != nil {
				return exitcode.New(exitcode.Input, fmt.Errorf("%s line %d: %w", displayName(name), line.Num, err))
			}
			if err := sc.AddRecord(rec); err != nil {
				return exitcode.New(exitcode.Input, fmt.Errorf("%s line %d: %w", displayName(name), line.Num, err))
			}
			records++
		}
	}
	rep := sc.Finish()
	for _, f := range rep.Findings {
		printFinding(stderr, f)
	}
	fmt.Fprintf(stderr, "%s: the store holds %d records (up to seq %d) and %d checkpoint sizes; %d finding(s)\n", prog, records, rep.LastSeq, len(rep.Sizes), len(rep.Findings))
	if len(rep.Findings) > 0 {
		return exitcode.Errorf(exitcode.Verify, "the store's copy is not the signed log: %s", rep.Findings[0].Reason)
	}
	return nil
}

type lineNote struct {
	msg  []byte
	line int64
}

// readNotes reads a checkpoint file's checkpoint notes and rotation notes.
func readNotes(path string) ([]lineNote, [][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, exitcode.New(exitcode.Input, err)
	}
	defer f.Close()
	r, err := ndjson.NewReader(f, ndjson.Options{MaxLine: 4 * checkpoint.MaxNoteSize})
	if err != nil {
		return nil, nil, exitcode.New(exitcode.Input, err)
	}
	defer r.Close()
	var notes []lineNote
	var rotations [][]byte
	for {
		line, err := r.Next()
		if err == io.EOF {
			return notes, rotations, nil
		}
		var le *ndjson.LineError
		if errors.As(err, &le) {
			return nil, nil, exitcode.New(exitcode.Input, fmt.Errorf("%s: %w", path, err))
		}
		if err != nil {
			return nil, nil, err
		}
		var l checkpointLine
		if err := json.Unmarshal(line.Bytes, &l); err != nil || (l.Checkpoint == nil && l.Rotation == nil) {
			return nil, nil, exitcode.Errorf(exitcode.Input, "%s line %d: not a {\"checkpoint\":…} or {\"rotation\":…} line", path, line.Num)
		}
		if l.Rotation != nil {
			rotations = append(rotations, []byte(*l.Rotation))
			continue
		}
		notes = append(notes, lineNote{[]byte(*l.Checkpoint), line.Num})
	}
}
