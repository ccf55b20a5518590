package auditcheckpoint

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/auditpipe/auditpipe/lib/checkpoint"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

const rotateSynopsis = `usage: audit-checkpoint rotate --signer OLD --new-signer NEW --new-verifier FILE --out FILE [--origin O]

Announces a new log signing key: appends to the checkpoint file --out a line
{"rotation":"<note>"} whose note names the origin and the new verifier key
and is signed by the old key and by the new one. verify, trusting the old
key, then trusts the new one too (a chain of rotations is followed), so
auditors need no new --verifier. Then switch seal to --signer NEW.

A rotation is not a revocation: the old key stays trusted. If the old key
may have leaked, give auditors the new verifier key alone (and rely on
witnesses: a thief of the old key can announce a rotation of their own).

--signer and --new-signer take a key file or a secret reference (file:,
env:, exec:), as seal's --signer.`

func runRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, env := newFlagSet("rotate", rotateSynopsis, stderr)
	oldRef := fs.String("signer", "", "the current signer key (file or secret reference)")
	newRef := fs.String("new-signer", "", "the new signer key (file or secret reference), from keygen")
	newPub := fs.String("new-verifier", "", "the new verifier key file, from keygen")
	out := fs.String("out", "", "the checkpoint file to append the announcement to")
	origin := fs.String("origin", "", "the log's origin (default: the current signer key's name)")
	if err := parse(fs, args, env, 0); err != nil {
		return err
	}
	if *oldRef == "" || *newRef == "" || *newPub == "" || *out == "" {
		return cli.Usagef("--signer, --new-signer, --new-verifier and --out are required")
	}
	old, err := checkpoint.OpenSigner(ctx, *oldRef)
	if err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	nw, err := checkpoint.OpenSigner(ctx, *newRef)
	if err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	vk, err := os.ReadFile(*newPub)
	if err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	if *origin == "" {
		*origin = old.Name()
	}
	var signers = []note.Signer{old, nw}
	if old.Name() == nw.Name() && old.KeyHash() == nw.KeyHash() {
		return cli.Usagef("--signer and --new-signer are the same key")
	}
	msg, err := checkpoint.SignRotation(signers[0], signers[1], *origin, strings.TrimSpace(string(vk)))
	if err != nil {
		return exitcode.New(exitcode.Usage, err)
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := checkpoint.AppendRotation(f, msg); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s", msg)
	fmt.Fprintf(stderr, "%s: appended the rotation to %s+%08x to %s; now run seal with --signer %s\n", prog, nw.Name(), nw.KeyHash(), *out, *newRef)
	return nil
}
