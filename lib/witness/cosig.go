// Package witness speaks the C2SP tlog-witness protocol to transparency-log
// witnesses and checks the cosignatures they return (C2SP tlog-cosignature,
// Ed25519 cosignature/v1).
//
// A witness is an independent party that keeps, for each log it knows, the
// newest checkpoint it cosigned. It cosigns a new checkpoint only with a
// consistency proof from that one: so once a checkpoint is cosigned, nobody
// (not even the holder of the log's signing key) can get a conflicting
// checkpoint cosigned by that witness. A verifier that demands K witnesses'
// cosignatures cannot be shown a view of the log that those witnesses did
// not see.
//
// Witness keys are vkeys (c2sp.org/signed-note) of signature type 0x04:
//
//	<name>+<8 hex digits of key ID>+<base64 of 0x04 || 32-byte Ed25519 public key>
//
// where the key ID is SHA-256(name || "\n" || 0x04 || public key)[:4]. A
// cosignature line is
//
//	— <name> base64(key ID || 8-byte big-endian POSIX timestamp || Ed25519 signature)
//
// and the signature covers "cosignature/v1\ntime <timestamp>\n" followed by
// the checkpoint's note text (the body, without signature lines).
package witness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// algCosignatureV1 is the signed-note signature type of Ed25519
// cosignature/v1 keys.
const algCosignatureV1 = 0x04

// Errors, tested with errors.Is.
var (
	// ErrBadKey: a witness key is not an Ed25519 cosignature/v1 vkey.
	ErrBadKey = errors.New("not a witness key")
	// ErrBadCosignature: a cosignature by a configured witness does not
	// verify (the note or the cosignature was altered), or a witness
	// answered with something that is not a valid cosignature of the
	// checkpoint it was sent.
	ErrBadCosignature = errors.New("bad cosignature")
)

// keyID returns the key ID of an Ed25519 cosignature/v1 key.
func keyID(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// Verifier verifies one witness's cosignatures. It implements
// note.Verifier, so a note.VerifierList of witness Verifiers can be given
// to note.Open.
type Verifier struct {
	name string
	id   uint32
	pub  ed25519.PublicKey
	vkey string
}

// NewVerifier parses a witness vkey.
func NewVerifier(vkey string) (*Verifier, error) {
	vkey = strings.TrimSpace(vkey)
	name, rest, ok1 := strings.Cut(vkey, "+")
	hexID, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validName(name) || len(hexID) != 8 {
		return nil, fmt.Errorf("%w: %q is not name+keyid+key", ErrBadKey, clip(vkey))
	}
	id, err := strconv.ParseUint(hexID, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: key ID %q is not 8 hex digits", ErrBadKey, clip(vkey), hexID)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %q: the key is not base64 of 33 bytes", ErrBadKey, clip(vkey))
	}
	if raw[0] != algCosignatureV1 {
		return nil, fmt.Errorf("%w: %q: signature type %#02x, want 0x04 (Ed25519 cosignature/v1; a log's own key is type 0x01)", ErrBadKey, clip(vkey), raw[0])
	}
	pub := ed25519.PublicKey(raw[1:])
	if keyID(name, pub) != uint32(id) {
		return nil, fmt.Errorf("%w: %q: the key ID does not match the name and key", ErrBadKey, clip(vkey))
	}
	return &Verifier{name: name, id: uint32(id), pub: pub, vkey: vkey}, nil
}

// Name is the witness's name, as in its cosignature lines.
func (v *Verifier) Name() string { return v.name }

// KeyHash is the key ID.
func (v *Verifier) KeyHash() uint32 { return v.id }

// String is the vkey.
func (v *Verifier) String() string { return v.vkey }

// Verify reports whether sig (a timestamped_signature: 8-byte timestamp and
// an Ed25519 signature) is a cosignature/v1 of the note text msg.
func (v *Verifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig)
	if ts > 1<<63-1 {
		return false
	}
	return ed25519.Verify(v.pub, signedMessage(ts, msg), sig[8:])
}

func signedMessage(ts uint64, text []byte) []byte {
	m := fmt.Appendf(nil, "cosignature/v1\ntime %d\n", ts)
	return append(m, text...)
}

// Signer makes cosignature/v1 signatures: what a witness does. auditpipe
// itself never cosigns; the protocol fake and the tests do.
type Signer struct {
	name string
	id   uint32
	priv ed25519.PrivateKey
	// Now is the clock of the timestamps (default time.Now).
	Now func() time.Time
}

// NewSigner returns the cosigner named name with key priv.
func NewSigner(name string, priv ed25519.PrivateKey) (*Signer, error) {
	if !validName(name) {
		return nil, fmt.Errorf("witness name %q: empty, or holds a space or '+'", name)
	}
	return &Signer{name: name, id: keyID(name, priv.Public().(ed25519.PublicKey)), priv: priv}, nil
}

// GenerateSigner makes a new cosigner key and returns it with its vkey.
func GenerateSigner(name string, rand io.Reader) (*Signer, string, error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, "", err
	}
	s, err := NewSigner(name, priv)
	if err != nil {
		return nil, "", err
	}
	return s, VerifierKey(name, pub), nil
}

// VerifierKey returns the vkey of an Ed25519 cosignature/v1 key.
func VerifierKey(name string, pub ed25519.PublicKey) string {
	return fmt.Sprintf("%s+%08x+%s", name, keyID(name, pub), base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...)))
}

func (s *Signer) Name() string    { return s.name }
func (s *Signer) KeyHash() uint32 { return s.id }

// Sign returns the timestamped_signature of msg (a note text) at Now.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := uint64(now().Unix())
	sig := binary.BigEndian.AppendUint64(nil, ts)
	return append(sig, ed25519.Sign(s.priv, signedMessage(ts, msg))...), nil
}

// CosignLine returns the signature line ("— name base64\n") of a
// cosignature of the note text.
func (s *Signer) CosignLine(text []byte) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: string(text)}, s)
	if err != nil {
		return nil, err
	}
	return msg[len(text)+1:], nil
}

// Cosignature is one verified cosignature of a checkpoint.
type Cosignature struct {
	Witness string    `json:"witness"` // the witness's name
	KeyID   string    `json:"keyId"`   // 8 hex digits
	Time    time.Time `json:"time"`    // when the witness cosigned
}

// Cosignatures returns the cosignatures on the signed note msg by the
// witnesses (a note.Verifiers of *Verifier; others' signatures, the log's
// included, are ignored). None is not an error. A cosignature by a
// configured witness that does not verify is ErrBadCosignature, naming the
// witness. Several cosignatures by one witness count once (the newest).
func Cosignatures(msg []byte, witnesses note.Verifiers) ([]Cosignature, error) {
	n, err := note.Open(msg, witnesses)
	if err != nil {
		var bad *note.InvalidSignatureError
		var unverified *note.UnverifiedNoteError
		switch {
		case errors.As(err, &unverified):
			return nil, nil
		case errors.As(err, &bad):
			return nil, fmt.Errorf("%w: the cosignature of witness %s (key ID %08x) does not verify: the checkpoint or the cosignature was altered", ErrBadCosignature, bad.Name, bad.Hash)
		}
		return nil, err
	}
	var out []Cosignature
	seen := map[string]int{}
	for _, s := range n.Sigs {
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil || len(raw) < 12 {
			continue // note.Open verified it; cannot happen
		}
		c := Cosignature{Witness: s.Name, KeyID: fmt.Sprintf("%08x", s.Hash),
			Time: time.Unix(int64(binary.BigEndian.Uint64(raw[4:12])), 0).UTC()}
		k := s.Name + "+" + c.KeyID
		if i, ok := seen[k]; ok {
			if c.Time.After(out[i].Time) {
				out[i] = c
			}
			continue
		}
		seen[k] = len(out)
		out = append(out, c)
	}
	return out, nil
}

// NewVerifiers returns the set of witness keys vkeys (duplicates count once).
func NewVerifiers(vkeys ...string) (note.Verifiers, []*Verifier, error) {
	var list []note.Verifier
	var ws []*Verifier
	seen := map[string]bool{}
	for _, k := range vkeys {
		v, err := NewVerifier(k)
		if err != nil {
			return nil, nil, err
		}
		if seen[v.vkey] {
			continue
		}
		seen[v.vkey] = true
		list = append(list, v)
		ws = append(ws, v)
	}
	if len(list) == 0 {
		return nil, nil, errors.New("no witness keys")
	}
	return note.VerifierList(list...), ws, nil
}

// AddCosignatures returns msg with the signature lines sigLines (each
// ending in a newline) appended: the cosigned note.
func AddCosignatures(msg, sigLines []byte) []byte {
	out := bytes.Clone(msg)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, sigLines...)
}

func validName(s string) bool {
	return s != "" && utf8.ValidString(s) && !strings.ContainsRune(s, '+') &&
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) < 0
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
