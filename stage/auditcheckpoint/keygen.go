package auditcheckpoint

import (
	"context"
	"fmt"
	"io"

	"github.com/auditpipe/auditpipe/lib/checkpoint"
	"github.com/auditpipe/auditpipe/lib/cli"
)

const keygenSynopsis = `usage: audit-checkpoint keygen --name NAME --signer FILE --verifier FILE

Generates an Ed25519 key pair: the signer key (mode 0600; it belongs with
the shipper that runs seal, never with the process that writes the log) and
the verifier key (mode 0644; give it to every auditor). Neither file may
exist already. The verifier key is printed on stdout.

Name the key after the log's origin, e.g. example.com/audit/prod.`

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, env := newFlagSet("keygen", keygenSynopsis, stderr)
	name := fs.String("name", "", "key name: the log's origin, e.g. example.com/audit/prod")
	signer := fs.String("signer", "", "write the signer key to this file (mode 0600; must not exist)")
	verifier := fs.String("verifier", "", "write the verifier key to this file (mode 0644; must not exist)")
	if err := parse(fs, args, env, 0); err != nil {
		return err
	}
	switch {
	case *name == "":
		return cli.Usagef("--name is required")
	case *signer == "" || *verifier == "":
		return cli.Usagef("--signer and --verifier are required")
	case *signer == *verifier:
		return cli.Usagef("--signer and --verifier must be different files")
	}
	if err := checkpoint.CheckName(*name); err != nil {
		return cli.Usagef("--name %q: %v", *name, err)
	}
	vkey, err := checkpoint.GenerateKeyFiles(*name, *signer, *verifier)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, vkey); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	fmt.Fprintf(stderr, "%s: wrote the signer key to %s (0600: keep it with the shipper, never with the log's writer) and the verifier key to %s\n",
		prog, *signer, *verifier)
	return nil
}
