package auditverify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/framing"
	"github.com/auditpipe/auditpipe/lib/ndjson"
)

// Many chains (issue 15): audit-consume's stream holds the record lines of
// many chains, each run of one chain's records after a chain mark naming it
// (with the chain's stored anchor the first time). The first line being a
// chain mark switches audit-verify to verifying each chain on its own
// (lib/chain.Multi): a chain that breaks is held alone (fail closed: none of
// its later records pass, a chain_held finding names it), the others go on,
// and the exit code at the end says a chain was held (3).

var chainMarkPrefix = []byte(`{"mark":{"type":"chain"`)

func isChainMark(line []byte) bool { return bytes.HasPrefix(line, chainMarkPrefix) }

// startChains switches to many chains at the first chain mark.
func (c *config) startChains() error {
	if c.given != nil || c.cursor != "" {
		return usage("the input is a stream of many chains (it starts with a chain mark, as audit-consume writes it), whose anchors come in its chain marks: --anchor and --from-cursor are for one chain; leave them out")
	}
	if c.chainWindow < 1 || c.maxChains < 1 {
		return usage("--chain-window and --max-chains must be at least 1")
	}
	c.multi = chain.NewMulti(chain.MultiOptions{Window: c.chainWindow, PassDuplicates: c.duplicates == "pass",
		FailClosed: c.mode == "fail-closed", MaxChains: c.maxChains})
	c.firstSeen = true
	return nil
}

// chainLine handles one input line of a stream of many chains.
func (c *config) chainLine(name string, line ndjson.Line, err error, out *ndjson.Writer, stderr io.Writer, rep *report) error {
	m := c.multi
	var done []chain.Finding
	pass := false
	switch {
	case err == nil && framing.IsMark(line.Bytes):
		mk, perr := chain.ParseMark(line.Bytes)
		if perr != nil {
			done = m.Note(line.Num, chain.ReasonBadMark, perr.Error())
		} else {
			done = m.Mark(line.Num, &mk)
		}
	case err == nil:
		c.flow.Read(len(line.Bytes))
		pass, done = m.Check(line.Num, line.Bytes)
	default:
		var le *ndjson.LineError
		if !errors.As(err, &le) {
			return fmt.Errorf("read %s: %w", displayName(name), err)
		}
		detail := strings.TrimPrefix(le.Error(), fmt.Sprintf("line %d: ", le.Num))
		if errors.Is(le.Kind, ndjson.ErrTooLong) {
			detail = fmt.Sprintf("record larger than --max-line (%d bytes): not evidence of tampering; raise --max-line (now %d)", le.Len, le.Max)
			if rep.firstTooLong == "" {
				rep.firstTooLong = fmt.Sprintf("line %d: %s", le.Num, detail)
			}
		}
		done = m.LineProblem(le.Num, chain.LineReason(le.Kind), detail)
	}
	for _, f := range done {
		rep.print(stderr, f)
		if f.Reason == chain.ReasonChainHeld {
			c.hold(f, stderr)
		}
	}
	if !pass {
		return nil
	}
	s := m.Current()
	if s.ID != c.lastOut {
		c.lastOut = s.ID
		if err := out.Write(chain.AppendChainMark(nil, s.ID, nil)); err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
	}
	if err := out.Write(line.Bytes); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	c.flow.Wrote(len(line.Bytes), s.Verifier().LastSeq())
	return nil
}

// hold tells audit-consume (--holds) that a chain is held, so that it stops
// counting the chain's records in flight (they will never be acked) while
// keeping its partition's committed offset at the chain's first record not
// delivered (nothing of it is lost).
func (c *config) hold(f chain.Finding, stderr io.Writer) {
	if c.holds == "" || f.Chain == "" {
		return
	}
	if c.holdW == nil {
		// Non-blocking open: a FIFO nobody reads (the consumer is gone)
		// must not stop the verification of every other chain.
		w, err := os.OpenFile(c.holds, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "%s: --holds: %v (the consumer is not told that chain %s is held)\n", prog, err, f.Chain)
			return
		}
		if err := syscall.SetNonblock(int(w.Fd()), false); err != nil {
			w.Close()
			fmt.Fprintf(stderr, "%s: --holds: %v\n", prog, err)
			return
		}
		c.holdW = w
	}
	// One write of a line shorter than PIPE_BUF: atomic among the other
	// writers of the FIFO (audit-ship's acks).
	if _, err := c.holdW.Write(append(chain.AppendHold(nil, chain.Hold{Chain: f.Chain, Seq: f.FirstSeq, Reason: holdReason(c.multi, f)}), '\n')); err != nil {
		fmt.Fprintf(stderr, "%s: --holds: %v (the consumer is not told that chain %s is held)\n", prog, err, f.Chain)
	}
}

func holdReason(m *chain.Multi, f chain.Finding) string {
	if s := m.Chain(f.Chain); s != nil && s.HeldReason != "" {
		return string(s.HeldReason)
	}
	return string(f.Reason)
}

// endChains ends a run of many chains: the summary, the report, and the
// exit code (3 when a chain was held or, in report mode, broke; the other
// chains' records were passed on all the same).
func (c *config) endChains(runErr error, stderr io.Writer, rep *report, start time.Time) error {
	if c.holdW != nil {
		c.holdW.Close()
	}
	m := c.multi
	st := m.Stats()
	held := m.HeldCount()
	if !c.quiet {
		fmt.Fprintf(stderr, "%s: %s in %s (%d held): %s\n", prog, cli.Count(st.Records, "record", ""), cli.Count(int64(m.Len()), "chain", ""), held, summary(st, rep, time.Since(start)))
	}
	failed := held > 0 || st.Errors > 0
	if ue, ok := runErr.(usageErr); ok {
		runErr = ue.error
	}
	if c.report != "" {
		if err := writeChainsReport(c.report, st, rep, m, runErr, failed); err != nil && runErr == nil {
			runErr = err
		}
	}
	if runErr != nil {
		return runErr
	}
	if failed {
		return exitcode.Errorf(exitcode.Verify, "chain verification failed: %d of %d chains held; the other chains' records were passed on (first: %s)", held, m.Len(), rep.firstError)
	}
	if st.InputErrors > 0 {
		return exitcode.Errorf(exitcode.Input, "%s (%d such record(s))", rep.firstTooLong, st.InputErrors)
	}
	return nil
}

type chainReport struct {
	Chain      string `json:"chain"`
	Records    int64  `json:"records"`
	Verified   int64  `json:"verified"`
	LastSeq    int64  `json:"lastSeq"`
	HeadHash   string `json:"headHash"`
	Held       bool   `json:"held"`
	HeldSeq    int64  `json:"heldSeq,omitempty"`
	HeldReason string `json:"heldReason,omitempty"`
	Refused    int64  `json:"refused,omitempty"`
}

func writeChainsReport(path string, st chain.Stats, rep *report, m *chain.Multi, runErr error, failed bool) error {
	var chains []chainReport
	for _, s := range m.Chains() {
		cs := s.Verifier().Stats()
		seq, h := s.Verifier().Head()
		chains = append(chains, chainReport{Chain: s.ID, Records: cs.Records, Verified: cs.Verified, LastSeq: seq, HeadHash: h,
			Held: s.Held, HeldSeq: s.HeldSeq, HeldReason: string(s.HeldReason), Refused: s.Refused})
	}
	return writeReportWith(path, st, rep, nil, runErr, failed, chains)
}
