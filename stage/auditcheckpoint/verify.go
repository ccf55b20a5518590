package auditcheckpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/checkpoint"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

const verifySynopsis = `usage: audit-checkpoint verify --verifier FILE... --checkpoints FILE --state FILE [--init] [flags] [RECORDS ...]

Reads the log's record lines from seq 1 (stdin, or the files named: plain,
gzip or zstd), checks their chain, and checks them against every signed
checkpoint in --checkpoints and the trusted state of the last run: the log
must still hold, at every signed size, the tree that was signed, and every
checkpoint must be one history with the trusted state. Each finding is
printed on stderr (reason, seqs, size, detail; the notes when two conflict).
Exit 3 if there is any. When there is none, the trusted state advances to
the newest checkpoint the log matches (written atomically, mode 0600).

The first run has no state: pass --init to trust the checkpoints on first
use. Without --init a missing state file is an error: a state that vanished
would otherwise silently reset trust.

With --witness-key (witness vkeys, one a line; VKEY=URL lines serve too) a
checkpoint counts only with the log's signature and --quorum K witness
cosignatures (default: all the witnesses given); signed sizes past the
newest witnessed one are "unwitnessed" (unless younger than
--max-unwitnessed), and the trusted state advances only to a witnessed
checkpoint. Key rotation lines ({"rotation":...}, from audit-checkpoint
rotate) are followed from the --verifier keys.

Examples:
  audit-read --db audit.db | audit-checkpoint verify --verifier ckpt.pub --checkpoints checkpoints.ndjson --state trusted.state --init
  audit-read --db audit.db | audit-checkpoint verify --verifier ckpt.pub --checkpoints checkpoints.ndjson --state trusted.state \
      --witness-key witnesses.txt --quorum 2 --max-unwitnessed 30m
  audit-read --db audit.db | audit-checkpoint verify --verifier ckpt.pub --verifier ckpt-2027.pub \
      --checkpoints witness-copy.ndjson --state trusted.state --max-unsealed 15m --report verify.json`

type verifyConfig struct {
	verifiers   fileList
	checkpoints string
	state       string
	init        bool
	origin      string
	maxUnsealed time.Duration
	report      string
	maxLine     int
	window      int
	quiet       bool
	files       []string
	wit         witnessFlags
}

func runVerify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	flags, env := newFlagSet("verify", verifySynopsis, stderr)
	var c verifyConfig
	flags.Var(&c.verifiers, "verifier", "trusted verifier key file (repeat for several, e.g. both keys during a rotation)")
	flags.StringVar(&c.checkpoints, "checkpoints", "", "checkpoint file (NDJSON, as seal writes it; merge copies from several places into one)")
	flags.StringVar(&c.state, "state", "", "trusted state file: the newest checkpoint verified by the last clean run")
	flags.BoolVar(&c.init, "init", false, "first run: no state file exists yet; trust the checkpoints on first use")
	flags.StringVar(&c.origin, "origin", "", "the log's origin (default: the state's, else the verifier keys' name)")
	flags.DurationVar(&c.maxUnsealed, "max-unsealed", 0, "fail if a record after the newest checkpoint is older than this (0: no limit)")
	flags.StringVar(&c.report, "report", "", "write a JSON report to this file (atomically, mode 0600)")
	flags.IntVar(&c.maxLine, "max-line", ndjson.DefaultMaxLine, "maximum record line length in bytes")
	flags.IntVar(&c.window, "window", 4096, "recent records remembered to tell a replay from an equivocation")
	flags.BoolVar(&c.quiet, "quiet", false, "no summary line on stderr (findings are still printed)")
	c.wit.register(flags, true)
	if err := parse(flags, args, env, -1); err != nil {
		return err
	}
	c.files = flags.Args()
	wvs, quorum, err := c.wit.load()
	if err != nil {
		return err
	}
	switch {
	case len(c.verifiers) == 0:
		return cli.Usagef("--verifier is required")
	case c.checkpoints == "":
		return cli.Usagef("--checkpoints is required")
	case c.state == "":
		return cli.Usagef("--state is required (with --init on the first run)")
	case c.maxUnsealed < 0:
		return cli.Usagef("--max-unsealed must not be negative")
	}
	vs, err := checkpoint.LoadVerifiers(c.verifiers...)
	if err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	trusted, err := c.readTrusted(stderr)
	if err != nil {
		return err
	}
	stateOrigin := ""
	if trusted != nil {
		stateOrigin = trusted.Origin
	}
	origin, err := resolveOrigin(c.origin, stateOrigin, c.verifiers)
	if err != nil {
		return err
	}
	chk, err := checkpoint.NewChecker(checkpoint.Options{Verifiers: vs, Origin: origin, Trusted: trusted,
		MaxUnsealed: c.maxUnsealed, Window: c.window, Witnesses: wvs, Quorum: quorum, MaxUnwitnessed: c.wit.maxUnwitnessed})
	if err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	cf, err := os.Open(c.checkpoints)
	if err != nil {
		return exitcode.New(exitcode.Input, fmt.Errorf("open checkpoints: %w", err))
	}
	err = chk.ReadCheckpoints(ctx, cf)
	cf.Close()
	if err != nil {
		return err
	}

	rep := &verifyReport{Origin: origin, Findings: []checkpoint.Finding{}, Chain: chainReport{Findings: []chain.Finding{}}}
	if trusted != nil {
		rep.TrustedBefore = summaryOf(trusted)
	}
	v := chain.NewVerifier(chain.Options{Window: c.window})
	runErr := c.readLog(ctx, chk, v, rep, stdin, stderr)
	if ctx.Err() != nil && runErr == nil {
		// Stopped early: the log was not read to its end, so nothing about
		// its tail is known. Report nothing, advance nothing.
		return ctx.Err()
	}
	rep.addChain(stderr, v.Finish())
	r := chk.Finish()
	for _, f := range r.Findings {
		printFinding(stderr, f)
	}
	rep.fill(r, v.Stats())
	rep.Rotations = r.Rotations
	for _, k := range r.Rotations {
		if !c.quiet {
			fmt.Fprintf(stderr, "%s: note key rotation followed: the checkpoint file's %s is trusted (announced by a trusted key)\n", prog, k)
		}
	}
	if quorum > 0 {
		rep.Witnessed, rep.UnwitnessedGaps = &r.Witnessed, r.UnwitnessedGaps
		if len(r.UnwitnessedGaps) > 0 && !c.quiet {
			fmt.Fprintf(stderr, "%s: note unwitnessed_gap: the checkpoints of sizes %v had fewer than %d witness cosignatures; a later witnessed checkpoint covers them (witnesses were down for a while: nothing is lost)\n", prog, r.UnwitnessedGaps, quorum)
		}
	}

	failed := r.Failed() || v.Failed()
	newCheckpoints := r.Checkpoints
	if trusted != nil {
		if _, err := trusted.Open(vs); err == nil {
			newCheckpoints-- // r.Checkpoints counts the trusted state
		}
	}
	var verdict error
	switch {
	case runErr != nil:
	case failed:
		verdict = exitcode.Errorf(exitcode.Verify, "verification failed: %s", problems(r, rep))
	case r.LogSize > 0 && r.Checkpoints == 0:
		verdict = exitcode.Errorf(exitcode.Verify, "nothing to verify the log against: %s holds no checkpoint of %s signed by a trusted key, and there is no trusted state", c.checkpoints, origin)
	}
	if runErr == nil && verdict == nil && r.State != nil && (trusted == nil || r.State.Note != trusted.Note) {
		if err := checkpoint.WriteState(c.state, *r.State); err != nil {
			runErr = err
		} else {
			rep.TrustedAfter = summaryOf(r.State)
		}
	}
	if !c.quiet {
		fmt.Fprintf(stderr, "%s: %s\n", prog, rep.summary(r, newCheckpoints, c.state))
	}
	rep.OK = runErr == nil && verdict == nil
	if runErr != nil {
		rep.RunError = runErr.Error()
	}
	if c.report != "" {
		if err := writeJSONFile(c.report, rep); err != nil && runErr == nil {
			runErr = fmt.Errorf("write report: %w", err)
		}
	}
	if runErr != nil {
		return runErr
	}
	return verdict
}

// readTrusted reads the trusted state, or returns nil on a first run.
func (c *verifyConfig) readTrusted(stderr io.Writer) (*checkpoint.State, error) {
	s, err := checkpoint.ReadState(c.state)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !c.init {
			return nil, cli.Usagef("no trusted state at %s: if this is the first run, pass --init to trust the checkpoints on first use; if earlier runs kept a state there, find out who removed it before trusting anew", c.state)
		}
		fmt.Fprintf(stderr, "%s: no trusted state at %s: trusting the checkpoints on first use (--init)\n", prog, c.state)
		return nil, nil
	case err != nil:
		return nil, exitcode.Errorf(exitcode.Verify, "trusted state: %v", err)
	case c.init:
		return nil, cli.Usagef("--init is for the first run only, and %s exists: drop --init", c.state)
	}
	return &s, nil
}

// readLog feeds every record line to the chain verifier and the Checker.
func (c *verifyConfig) readLog(ctx context.Context, chk *checkpoint.Checker, v *chain.Verifier, rep *verifyReport, stdin io.Reader, stderr io.Writer) error {
	inputs := c.files
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	var p chain.LineParser
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
		r, err := ndjson.NewReader(src, ndjson.Options{MaxLine: c.maxLine, NoValidate: true})
		if err != nil {
			return exitcode.New(exitcode.Input, fmt.Errorf("%s: %w", displayName(name), err))
		}
		defer r.Close()
		for {
			if ctx.Err() != nil {
				return nil
			}
			line, err := r.Next()
			if err == io.EOF {
				break
			}
			var le *ndjson.LineError
			if errors.As(err, &le) {
				rep.addChain(stderr, v.LineProblem(le.Num, chain.LineReason(le.Kind), le.Error()))
				continue
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", displayName(name), err)
			}
			if framing.IsMark(line.Bytes) {
				continue // audit-read's control line for audit-verify: not a record
			}
			_, found := v.Check(line.Num, line.Bytes)
			rep.addChain(stderr, found)
			rec, err := p.Parse(line.Bytes)
			if err != nil {
				continue // the chain verifier reported it; the Checker sees the gap
			}
			if err := chk.Append(rec.Seq, rec.RecordHash, rec.TS); err != nil {
				return err
			}
		}
	}
	return nil
}

// printFinding prints a Checker finding: "error REASON: seq A..B, size S,
// checkpoint line L: detail", then the notes when two conflict.
func printFinding(w io.Writer, f checkpoint.Finding) {
	var where []string
	switch {
	case f.FirstSeq == 0:
	case f.FirstSeq == f.LastSeq:
		where = append(where, fmt.Sprintf("seq %d", f.FirstSeq))
	default:
		where = append(where, fmt.Sprintf("seq %d..%d", f.FirstSeq, f.LastSeq))
	}
	if f.Size > 0 {
		where = append(where, fmt.Sprintf("size %d", f.Size))
	}
	if f.Line > 0 {
		where = append(where, fmt.Sprintf("checkpoint line %d", f.Line))
	}
	loc := ""
	if len(where) > 0 {
		loc = " " + strings.Join(where, ", ") + ":"
	}
	fmt.Fprintf(w, "%s: %s %s:%s %s\n", prog, f.Severity, f.Reason, loc, f.Detail)
	if len(f.Notes) < 2 {
		return // the single note concerned is in --report
	}
	for i, n := range f.Notes {
		fmt.Fprintf(w, "    note %d of %d:\n", i+1, len(f.Notes))
		for _, l := range strings.Split(strings.TrimSuffix(n, "\n"), "\n") {
			if l == "" {
				fmt.Fprintln(w)
				continue
			}
			fmt.Fprintf(w, "        %s\n", l)
		}
	}
}

// problems names the reasons found, in order, with their counts:
// "rewrite", "bad_signature, rollback", "equivocation (6)", "chain hash_mismatch".
func problems(r checkpoint.Report, rep *verifyReport) string {
	var order []string
	count := make(map[string]int)
	add := func(reason string, n int) {
		if count[reason] == 0 {
			order = append(order, reason)
		}
		count[reason] += n
	}
	for _, f := range rep.Chain.Findings {
		if f.Severity == chain.SeverityError {
			add("chain "+string(f.Reason), int(f.Count))
		}
	}
	for _, f := range r.Findings {
		add(string(f.Reason), 1)
	}
	parts := make([]string, len(order))
	for i, reason := range order {
		parts[i] = reason
		if n := count[reason]; n > 1 {
			parts[i] = fmt.Sprintf("%s (%d)", reason, n)
		}
	}
	return strings.Join(parts, ", ")
}

// maxKept bounds the chain findings kept for the report.
const maxKept = 10000

type verifyReport struct {
	OK            bool                 `json:"ok"`
	Origin        string               `json:"origin"`
	LogSize       int64                `json:"logSize"`
	Checkpoints   int                  `json:"checkpoints"`
	Sizes         int                  `json:"sizes"`
	Matched       int                  `json:"matched"`
	Unchecked     int                  `json:"unchecked"`
	Proofs        int                  `json:"consistencyProofs"`
	ProofsOK      int                  `json:"consistencyProofsOK"`
	Covered       int64                `json:"covered"`
	Duplicates    int64                `json:"duplicates"`
	Findings      []checkpoint.Finding `json:"findings"`
	Chain         chainReport          `json:"chain"`
	TrustedBefore *stateSummary        `json:"trustedBefore"`
	TrustedAfter  *stateSummary        `json:"trustedAfter"`
	// With --witness-key: the newest size the log matches with the quorum
	// of cosignatures, and the signed sizes below it that lacked it.
	Witnessed       *int64  `json:"witnessed,omitempty"`
	UnwitnessedGaps []int64 `json:"unwitnessedGaps,omitempty"`
	// Keys trusted through key rotations in the checkpoint file.
	Rotations []string `json:"rotations,omitempty"`
	RunError  string   `json:"runError,omitempty"`
}

type chainReport struct {
	Records    int64           `json:"records"`
	Verified   int64           `json:"verified"`
	Tombstones int64           `json:"tombstones"`
	Errors     int64           `json:"errors"`
	Findings   []chain.Finding `json:"findings"`
	Dropped    int64           `json:"findingsNotListed"`
}

type stateSummary struct {
	Size int64  `json:"size"`
	Root string `json:"root"`
}

func summaryOf(s *checkpoint.State) *stateSummary {
	return &stateSummary{Size: s.Size, Root: s.Root}
}

func (rep *verifyReport) addChain(stderr io.Writer, found []chain.Finding) {
	for _, f := range found {
		fmt.Fprintf(stderr, "%s: chain: %s\n", prog, f)
		if len(rep.Chain.Findings) < maxKept {
			rep.Chain.Findings = append(rep.Chain.Findings, f)
		} else {
			rep.Chain.Dropped++
		}
	}
}

func (rep *verifyReport) fill(r checkpoint.Report, st chain.Stats) {
	rep.LogSize, rep.Checkpoints, rep.Sizes, rep.Matched, rep.Unchecked = r.LogSize, r.Checkpoints, r.Sizes, r.Matched, r.Unchecked
	rep.Proofs, rep.ProofsOK, rep.Covered, rep.Duplicates = r.Proofs, r.ProofsOK, r.Covered, r.Duplicates
	rep.Findings = append(rep.Findings, r.Findings...)
	rep.Chain.Records, rep.Chain.Verified, rep.Chain.Tombstones, rep.Chain.Errors = st.Records, st.Verified, st.Tombstones, st.Errors
}

func (rep *verifyReport) summary(r checkpoint.Report, newCheckpoints int, statePath string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log of %d records, %d verified by the chain", r.LogSize, rep.Chain.Verified)
	if rep.Chain.Tombstones > 0 {
		fmt.Fprintf(&b, " (%d tombstones)", rep.Chain.Tombstones)
	}
	fmt.Fprintf(&b, "; %d checkpoints of %s (%d sizes up to %d), %d matching the log, %d of %d consistency proofs verified",
		newCheckpoints, rep.Origin, r.Sizes, r.Covered, r.Matched, r.ProofsOK, r.Proofs)
	if n := len(r.Findings) + int(rep.Chain.Errors); n > 0 {
		fmt.Fprintf(&b, "; %d problem(s)", n)
	} else if r.Checkpoints == 0 && r.LogSize > 0 {
		b.WriteString("; nothing signed to check the log against")
	} else {
		b.WriteString("; clean")
	}
	switch {
	case rep.TrustedAfter != nil && rep.TrustedBefore != nil:
		fmt.Fprintf(&b, "; trusted state %s advanced from size %d to %d", statePath, rep.TrustedBefore.Size, rep.TrustedAfter.Size)
	case rep.TrustedAfter != nil:
		fmt.Fprintf(&b, "; trusted state %s created at size %d", statePath, rep.TrustedAfter.Size)
	case rep.TrustedBefore != nil:
		fmt.Fprintf(&b, "; trusted state stays at size %d", rep.TrustedBefore.Size)
	}
	return b.String()
}
