// Package auditcheckpoint is audit-checkpoint: signed checkpoints over the
// audit log's Merkle tree (lib/checkpoint), in five commands: keygen, seal,
// verify, prove and check-proof. The man page is cmd/audit-checkpoint/doc.go.
package auditcheckpoint

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/auditpipe/auditpipe/lib/checkpoint"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/witness"
)

const prog = "audit-checkpoint"

const usage = `usage: audit-checkpoint COMMAND [flags] [ARGS]

Signed checkpoints over the audit log's Merkle tree: they show what the hash
chain alone cannot (rows cut off the end, a rewrite with recomputed hashes,
a whole chain replaced, two histories).

Commands:
  keygen       generate a signer key (for the shipper) and a verifier key (for auditors)
  seal         filter: pass record lines through, appending signed checkpoints to a file
  verify       check a log against the checkpoints and the trusted state of the last run
  prove        write an inclusion proof bundle for one record
  check-proof  check an inclusion proof bundle offline, with the verifier key alone
  rotate       announce a new signing key in the checkpoint file, signed by the old one
  check-store  check a store's (SIEM's) copy of the log and name what it lost as seq ranges

"audit-checkpoint COMMAND -h" prints a command's flags; each flag is also
settable as AUDIT_CHECKPOINT_<COMMAND>_<FLAG> (dashes as underscores).

Examples:
  audit-checkpoint keygen --name example.com/audit/prod --signer /etc/auditpipe/ckpt.key --verifier ckpt.pub
  audit-read --db audit.db --from-cursor splunk:prod | audit-verify --db audit.db --from-cursor splunk:prod \
    | audit-checkpoint seal --signer /etc/auditpipe/ckpt.key --out checkpoints.ndjson --state seal.state | audit-batch | ...
  audit-read --db audit.db | audit-checkpoint verify --verifier ckpt.pub --checkpoints checkpoints.ndjson --state trusted.state
  audit-read --db audit.db | audit-checkpoint prove --verifier ckpt.pub --checkpoints checkpoints.ndjson --seq 42 > proof.json
  audit-checkpoint check-proof --verifier ckpt.pub proof.json
`

// Main is the entry point of the audit-checkpoint binary.
func Main() int { return cli.Main(prog, Run) }

// Run is audit-checkpoint with its I/O passed in: args[0] is the command.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s\n%s", usage, exitcode.Table)
		return cli.Usagef("no command given (keygen, seal, verify, prove or check-proof)")
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprintf(stderr, "%s\n%s", usage, exitcode.Table)
		return flag.ErrHelp
	case "keygen":
		err = runKeygen(ctx, rest, stdout, stderr)
	case "seal":
		err = runSeal(ctx, rest, stdin, stdout, stderr)
	case "verify":
		err = runVerify(ctx, rest, stdin, stdout, stderr)
	case "prove":
		err = runProve(ctx, rest, stdin, stdout, stderr)
	case "check-proof":
		err = runCheckProof(ctx, rest, stdin, stdout, stderr)
	case "rotate":
		err = runRotate(ctx, rest, stdout, stderr)
	case "check-store":
		err = runCheckStore(ctx, rest, stdin, stdout, stderr)
	default:
		return cli.Usagef("unknown command %q (want keygen, seal, verify, prove, check-proof, rotate or check-store; -h for help)", cmd)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	return err
}

// newFlagSet returns the flag set of one command: env prefix
// AUDIT_CHECKPOINT_<COMMAND>, so that seal's --state (the signer's frontier)
// and verify's --state (the auditor's trusted checkpoint) never share an
// environment variable.
func newFlagSet(cmd, synopsis string, stderr io.Writer) (*flag.FlagSet, string) {
	env := "AUDIT_CHECKPOINT_" + strings.ToUpper(strings.ReplaceAll(cmd, "-", "_"))
	return cli.NewFlagSet(prog+" "+cmd, env, synopsis, stderr), env
}

// parse parses a command's flags, with -config, and refuses positional
// arguments beyond maxArgs (-1: any number).
func parse(fs *flag.FlagSet, args []string, env string, maxArgs int) error {
	_ = fs.String("config", "", "config file (flag value pairs, one per line)")
	if err := cli.Parse(fs, args, env); err != nil {
		return err
	}
	if maxArgs >= 0 && fs.NArg() > maxArgs {
		return cli.Usagef("unexpected argument %q", fs.Arg(maxArgs))
	}
	return nil
}

// fileList is a flag that may be repeated.
type fileList []string

func (f *fileList) String() string { return strings.Join(*f, ",") }
func (f *fileList) Set(s string) error {
	if s == "" {
		return errors.New("empty file name")
	}
	*f = append(*f, s)
	return nil
}

// keyNames returns the distinct names of the verifier keys in the files,
// sorted. The files were read by checkpoint.LoadVerifiers already, so their
// keys parse.
func keyNames(paths []string) []string {
	var names []string
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if v, err := note.NewVerifier(line); err == nil && !slices.Contains(names, v.Name()) {
				names = append(names, v.Name())
			}
		}
	}
	slices.Sort(names)
	return names
}

// logKeys loads the log's verifier keys (--verifier) and resolves its
// origin (--origin, else the keys' name).
func logKeys(verifierFiles []string, origin string) (note.Verifiers, string, error) {
	vs, err := checkpoint.LoadVerifiers(verifierFiles...)
	if err != nil {
		return nil, "", exitcode.New(exitcode.Usage, err)
	}
	o, err := resolveOrigin(origin, "", verifierFiles)
	if err != nil {
		return nil, "", err
	}
	return vs, o, nil
}

// resolveOrigin returns --origin, else the trusted state's origin, else the
// name of the verifier keys when they all have one (keys are named after
// the log's origin).
func resolveOrigin(flagOrigin, stateOrigin string, verifierFiles []string) (string, error) {
	switch {
	case flagOrigin != "":
		if err := checkpoint.CheckName(flagOrigin); err != nil {
			return "", cli.Usagef("--origin %q: %v", flagOrigin, err)
		}
		return flagOrigin, nil
	case stateOrigin != "":
		return stateOrigin, nil
	}
	names := keyNames(verifierFiles)
	if len(names) != 1 {
		return "", cli.Usagef("give --origin: the verifier keys have %d names (%s), so the log's origin is not implied", len(names), strings.Join(names, ", "))
	}
	return names[0], nil
}

// checkpointLine is one line of a checkpoint file.
type checkpointLine struct {
	Checkpoint *string `json:"checkpoint"`
	Rotation   *string `json:"rotation"`
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory (mode perm), fsynced, renamed over path, and the directory
// fsynced: a crash leaves the old file or the new one, never a mix.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil // the rename is done; a directory we cannot open we cannot sync
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// writeJSONFile writes v, indented, atomically with mode 0600.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o600)
}

func displayName(n string) string {
	if n == "-" {
		return "stdin"
	}
	return n
}

// witnessFlags are --witness-key, --quorum and --max-unwitnessed: the
// witnesses a verifier demands cosignatures from.
type witnessFlags struct {
	keys           fileList
	quorum         int
	maxUnwitnessed time.Duration
}

func (w *witnessFlags) register(flags *flag.FlagSet, unwitnessed bool) {
	flags.Var(&w.keys, "witness-key", "witness key file: one witness a line, VKEY or VKEY=URL (a seal --witness-file serves); repeatable")
	flags.IntVar(&w.quorum, "quorum", -1, "how many of the --witness-key witnesses must have cosigned a checkpoint (default: all of them)")
	if unwitnessed {
		flags.DurationVar(&w.maxUnwitnessed, "max-unwitnessed", 0, "tolerate log-signed checkpoints past the newest witnessed one while the first record they add is younger than this (0: never)")
	}
}

// load returns the witness keys and the quorum (0: no witnesses).
func (w *witnessFlags) load() (note.Verifiers, int, error) {
	if len(w.keys) == 0 {
		if w.quorum > 0 {
			return nil, 0, cli.Usagef("--quorum %d needs --witness-key", w.quorum)
		}
		return nil, 0, nil
	}
	var vkeys []string
	for _, f := range w.keys {
		ws, err := witness.ReadWitnessFile(f)
		if err != nil {
			return nil, 0, exitcode.New(exitcode.Usage, fmt.Errorf("--witness-key: %w", err))
		}
		for _, x := range ws {
			vkeys = append(vkeys, x.String())
		}
	}
	vs, list, err := witness.NewVerifiers(vkeys...)
	if err != nil {
		return nil, 0, exitcode.New(exitcode.Usage, fmt.Errorf("--witness-key: %w", err))
	}
	q := w.quorum
	switch {
	case q < 0:
		q = len(list)
	case q == 0 || q > len(list):
		return nil, 0, cli.Usagef("--quorum %d: want 1..%d (the witnesses configured)", q, len(list))
	}
	return vs, q, nil
}
