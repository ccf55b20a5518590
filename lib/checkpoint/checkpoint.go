package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"encoding/hex"
	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/elide"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The errors of Open, Sign and the proof checks. Test for them with
// errors.Is; the messages add the details.
var (
	// ErrMalformed: the note or its checkpoint body is not in the C2SP
	// tlog-checkpoint form (or a proof bundle or state file is not in its
	// documented form).
	ErrMalformed = errors.New("malformed checkpoint")
	// ErrBadSignature: a trusted key signed the note but the signature does
	// not verify: the text or the signature was altered.
	ErrBadSignature = errors.New("bad signature")
	// ErrUnknownKey: no trusted key signed the note. Fail closed: the text
	// of such a note is never looked at.
	ErrUnknownKey = errors.New("unknown key")
	// ErrInconsistent: a consistency proof does not show that the older
	// checkpoint's tree is a prefix of the newer one's.
	ErrInconsistent = errors.New("checkpoints are not consistent")
	// ErrNotIncluded: an inclusion proof does not show that the record is
	// in the checkpoint's tree.
	ErrNotIncluded = errors.New("record is not included")
	// ErrBadRecordHash: a recordHash is not 64 lowercase hex characters.
	ErrBadRecordHash = errors.New("recordHash is not 64 lowercase hex characters")
)

// MaxNoteSize bounds a signed checkpoint note. Ours are about 200 bytes; the
// bound leaves room for many cosignatures (note.Open stops at 100).
const MaxNoteSize = 64 << 10

// emptyRoot is the root of the tree of 0 records: SHA-256 of nothing
// (RFC 6962 section 2.1).
var emptyRoot = tlog.Hash(sha256.Sum256(nil))

// Checkpoint is a signed tree head: the log named Origin had Size records
// (seqs 1..Size) and the RFC 6962 root of their Merkle tree was Root.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	// Extensions are the C2SP extension lines after the root, if any. Sign
	// never writes them; Open keeps them so that the body round-trips.
	Extensions []string
	// Note is the signed note, byte for byte as it was given to Open.
	Note []byte
}

// Sign returns the signed note of a checkpoint in the C2SP tlog-checkpoint
// form:
//
//	<origin>
//	<size in decimal>
//	<root, standard base64>
//
//	— <key name> <base64 of key hash and Ed25519 signature>
//
// The origin names the log (for example "example.com/auditpipe/prod"); it
// must be non-empty and hold no spaces, '+' or control characters, the
// C2SP recommendation, so that it can double as the key name.
func Sign(signer note.Signer, origin string, size int64, root tlog.Hash) ([]byte, error) {
	if signer == nil {
		return nil, errors.New("sign checkpoint: no signer")
	}
	if err := CheckName(origin); err != nil {
		return nil, fmt.Errorf("sign checkpoint: origin %q: %w", origin, err)
	}
	if size < 0 {
		return nil, fmt.Errorf("sign checkpoint: negative size %d", size)
	}
	msg, err := note.Sign(&note.Note{Text: formatBody(origin, size, root, nil)}, signer)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return msg, nil
}

// Open verifies the signed note msg against the trusted verifiers and parses
// its checkpoint body. It fails closed:
//
//   - ErrUnknownKey if no trusted key signed it (signatures by other keys,
//     such as witness cosignatures, are allowed next to a trusted one);
//   - ErrBadSignature if a signature by a trusted key does not verify;
//   - ErrMalformed if the note or the body is not well formed. Open is
//     strict where note.Open is lenient: a signature line repeated for one
//     key, or a signature in non-canonical base64, is malformed, so every
//     byte of an accepted note is covered.
//
// On success Checkpoint.Note is a copy of msg.
func Open(msg []byte, verifiers note.Verifiers) (Checkpoint, error) {
	if len(msg) > MaxNoteSize {
		return Checkpoint{}, fmt.Errorf("open checkpoint: %w: note of %d bytes (max %d)", ErrMalformed, len(msg), MaxNoteSize)
	}
	if verifiers == nil {
		return Checkpoint{}, fmt.Errorf("open checkpoint: %w: no trusted keys given", ErrUnknownKey)
	}
	n, err := note.Open(msg, verifiers)
	if err != nil {
		var bad *note.InvalidSignatureError
		var unverified *note.UnverifiedNoteError
		switch {
		case errors.As(err, &bad):
			return Checkpoint{}, fmt.Errorf("open checkpoint: %w: %v", ErrBadSignature, err)
		case errors.As(err, &unverified):
			return Checkpoint{}, fmt.Errorf("open checkpoint: %w: signed only by %s", ErrUnknownKey, sigNames(unverified.Note.UnverifiedSigs))
		}
		return Checkpoint{}, fmt.Errorf("open checkpoint: %w: %v", ErrMalformed, err)
	}
	if err := strictSigs(msg, n); err != nil {
		return Checkpoint{}, fmt.Errorf("open checkpoint: %w: %v", ErrMalformed, err)
	}
	cp, err := parseBody(n.Text)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("open checkpoint: %w: %v", ErrMalformed, err)
	}
	cp.Note = bytes.Clone(msg)
	return cp, nil
}

func sigNames(sigs []note.Signature) string {
	var names []string
	for _, s := range sigs {
		names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	if len(names) == 0 {
		return "no key"
	}
	return strings.Join(names, ", ")
}

// strictSigs rejects what note.Open lets through without checking: a second
// signature line for the same key (note.Open skips it unverified) and base64
// with non-zero padding bits (two encodings of one signature).
func strictSigs(msg []byte, n *note.Note) error {
	block := msg[bytes.LastIndex(msg, []byte("\n\n"))+2:]
	if lines := bytes.Count(block, []byte("\n")); lines != len(n.Sigs)+len(n.UnverifiedSigs) {
		return errors.New("a signature line is repeated")
	}
	for _, list := range [][]note.Signature{n.Sigs, n.UnverifiedSigs} {
		for _, s := range list {
			raw, err := base64.StdEncoding.Strict().DecodeString(s.Base64)
			if err != nil || base64.StdEncoding.EncodeToString(raw) != s.Base64 {
				return fmt.Errorf("signature by %s is not canonical base64", s.Name)
			}
		}
	}
	return nil
}

// formatBody is the checkpoint body: origin, size and root lines, then any
// extension lines.
func formatBody(origin string, size int64, root tlog.Hash, ext []string) string {
	var b strings.Builder
	b.WriteString(origin)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(size, 10))
	b.WriteByte('\n')
	b.WriteString(root.String())
	b.WriteByte('\n')
	for _, e := range ext {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.String()
}

// parseBody parses a checkpoint body (note text, ending in a newline).
func parseBody(text string) (Checkpoint, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("the body has %d lines, want origin, size and root", len(lines))
	}
	if lines[0] == "" {
		return Checkpoint{}, errors.New("empty origin line")
	}
	size, err := parseSize(lines[1])
	if err != nil {
		return Checkpoint{}, err
	}
	root, err := parseHash(lines[2])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("root: %v", err)
	}
	cp := Checkpoint{Origin: lines[0], Size: size, Root: root}
	for i, e := range lines[3:] {
		if e == "" {
			return Checkpoint{}, fmt.Errorf("empty extension line %d", i+4)
		}
		cp.Extensions = append(cp.Extensions, e)
	}
	return cp, nil
}

// parseSize parses a tree size: ASCII decimal, no sign, no leading zero.
func parseSize(s string) (int64, error) {
	if s == "" || len(s) > 1 && s[0] == '0' || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("size %q is not a decimal number without leading zeros", clip(s))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q is out of range", clip(s))
	}
	return n, nil
}

// parseHash parses a hash in standard padded base64, accepting only the
// canonical encoding (tlog.ParseHash also takes non-zero padding bits).
func parseHash(s string) (tlog.Hash, error) {
	var h tlog.Hash
	if len(s) != 44 || strings.ContainsAny(s, "\r\n") {
		return h, fmt.Errorf("%q is not a base64 SHA-256 hash", clip(s))
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(raw) != tlog.HashSize {
		return h, fmt.Errorf("%q is not a base64 SHA-256 hash", clip(s))
	}
	copy(h[:], raw)
	return h, nil
}

// CheckName checks an origin or key name (the C2SP recommendation):
// non-empty UTF-8 without Unicode spaces, '+' or control characters.
func CheckName(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case !utf8.ValidString(s):
		return errors.New("not valid UTF-8")
	case strings.ContainsRune(s, '+'):
		return errors.New("contains '+'")
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		return errors.New("contains a space")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return errors.New("contains a control character")
	}
	return nil
}

// decodeRecordHash decodes a recordHash: exactly 64 lowercase hex
// characters (docs/contract.md section 2), the 32 bytes that are a leaf's data.
func decodeRecordHash(h []byte) ([32]byte, error) {
	var raw [32]byte
	if !chain.IsHexHash(h) {
		return raw, fmt.Errorf("%w: %q", ErrBadRecordHash, clip(string(h)))
	}
	hex.Decode(raw[:], h)
	return raw, nil
}

func clip(s string) string { return elide.To(s, 80) }
