package checkpoint

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/auditpipe/auditpipe/lib/secret"
)

// OpenSigner returns the log's signer from a reference:
//
//   - a plain path, or file:PATH: a signer key file (LoadSigner: mode 0600
//     or stricter, as ssh does);
//   - env:NAME or exec:COMMAND (lib/secret; also the ${secret:...}
//     spellings): the signer key text "PRIVATE+KEY+<name>+<hash>+<key>"
//     itself, e.g. exec:vault kv get -field=key secret/auditpipe/ckpt.
//
// Each of these puts the private key in auditpipe's memory. To keep it out
// (a KMS, an HSM, an ssh-agent), use an external signer: NewExternalSigner.
func OpenSigner(ctx context.Context, ref string) (note.Signer, error) {
	if path, ok := strings.CutPrefix(ref, "file:"); ok {
		return LoadSigner(path)
	}
	if !secret.IsReference(ref) {
		return LoadSigner(ref)
	}
	s, err := secret.Resolve(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("load signer: %w", err)
	}
	sg, err := note.NewSigner(strings.TrimSpace(s.Value()))
	if err != nil {
		// Never quote the value: it is (meant to be) a secret.
		return nil, fmt.Errorf("load signer: %s does not hold a signer key (%v)", ref, err)
	}
	return sg, nil
}

// ExternalSignerTimeout bounds one run of an external signer.
const ExternalSignerTimeout = 30 * time.Second

// ExternalSigner signs checkpoints by running a command that holds the key
// (a KMS or HSM client, an ssh-agent helper): auditpipe never sees the
// private key. The protocol, version 1, one run per signature:
//
//   - the command line is split into words without a shell (as exec:
//     references are) and run with the environment plus
//     AUDITPIPE_SIGNER_PROTOCOL=1, AUDITPIPE_SIGNER_KEY_NAME=<key name> and
//     AUDITPIPE_SIGNER_KEY_ID=<8 hex digits>;
//   - its standard input is the exact message to sign: the checkpoint's
//     note text (origin, size and root lines, each ending in a newline);
//   - it writes the 64-byte Ed25519 signature of that message (RFC 8032,
//     pure Ed25519, no prehash), standard base64, on standard output (one
//     line), and exits 0; any other exit status is a failure (the first
//     part of standard error is reported);
//   - it must finish within ExternalSignerTimeout.
//
// Every signature is verified against the verifier key before it is used:
// a signer that answers with a wrong key, a wrong message or garbage never
// produces a checkpoint.
type ExternalSigner struct {
	argv []string
	name string
	hash uint32
	pub  ed25519.PublicKey
	vkey note.Verifier
}

// NewExternalSigner returns the signer that runs command, for the log key
// whose verifier key (name+hash+base64 of 0x01 and the Ed25519 key) is vkey.
func NewExternalSigner(command, vkey string) (*ExternalSigner, error) {
	argv, err := secret.SplitCommand(command)
	if err != nil || len(argv) == 0 {
		return nil, fmt.Errorf("external signer %q: %v", command, errOr(err, "no command"))
	}
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("external signer: verifier key: %w", err)
	}
	_, rest, _ := strings.Cut(strings.TrimSpace(vkey), "+")
	_, b64, _ := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 33 || raw[0] != 1 {
		return nil, fmt.Errorf("external signer: verifier key %q is not an Ed25519 note key", clip(vkey))
	}
	return &ExternalSigner{argv: argv, name: v.Name(), hash: v.KeyHash(), pub: ed25519.PublicKey(raw[1:]), vkey: v}, nil
}

func errOr(err error, s string) error {
	if err != nil {
		return err
	}
	return errors.New(s)
}

func (s *ExternalSigner) Name() string    { return s.name }
func (s *ExternalSigner) KeyHash() uint32 { return s.hash }

// Sign runs the command on msg and returns the verified signature.
func (s *ExternalSigner) Sign(msg []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ExternalSignerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.argv[0], s.argv[1:]...)
	cmd.Env = append(os.Environ(), "AUDITPIPE_SIGNER_PROTOCOL=1",
		"AUDITPIPE_SIGNER_KEY_NAME="+s.name, fmt.Sprintf("AUDITPIPE_SIGNER_KEY_ID=%08x", s.hash))
	cmd.Stdin = bytes.NewReader(msg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		e := strings.TrimSpace(stderr.String())
		if len(e) > 200 {
			e = e[:200] + "…"
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("timed out after %s", ExternalSignerTimeout)
		}
		return nil, fmt.Errorf("external signer %s: %v: %s", s.argv[0], err, e)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(stdout.String()))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("external signer %s: its output is not the base64 of a 64-byte Ed25519 signature", s.argv[0])
	}
	if !ed25519.Verify(s.pub, msg, sig) {
		return nil, fmt.Errorf("external signer %s: the signature does not verify against %s+%08x: the signer holds another key, or signed another message", s.argv[0], s.name, s.hash)
	}
	return sig, nil
}
