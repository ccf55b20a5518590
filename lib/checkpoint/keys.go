package checkpoint

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// maxKeyFile bounds a key file read by LoadSigner or LoadVerifiers.
const maxKeyFile = 1 << 20

// GenerateKey generates an Ed25519 key pair in the text form of
// golang.org/x/mod/sumdb/note: the signer key "PRIVATE+KEY+<name>+<hash>+<key>"
// (secret: it belongs with the shipper that signs checkpoints, never with
// the process that writes the log) and the verifier key "<name>+<hash>+<key>"
// (public: give it to every auditor). Use the log's origin as the name.
func GenerateKey(name string) (skey, vkey string, err error) {
	if err := CheckName(name); err != nil {
		return "", "", fmt.Errorf("generate key: name %q: %w", name, err)
	}
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	return skey, vkey, nil
}

// GenerateKeyFiles generates a key pair with GenerateKey and writes the
// signer key to signerPath (mode 0600) and the verifier key to verifierPath
// (mode 0644), each followed by a newline. It never overwrites: if either
// file exists it fails and leaves both as they were. It returns the verifier
// key.
func GenerateKeyFiles(name, signerPath, verifierPath string) (vkey string, err error) {
	skey, vkey, err := GenerateKey(name)
	if err != nil {
		return "", err
	}
	if err := writeNew(signerPath, []byte(skey+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write signer key: %w", err)
	}
	if err := writeNew(verifierPath, []byte(vkey+"\n"), 0o644); err != nil {
		os.Remove(signerPath)
		return "", fmt.Errorf("write verifier key: %w", err)
	}
	return vkey, nil
}

// writeNew creates path (failing if it exists) with exactly mode perm,
// whatever the umask, and syncs it.
func writeNew(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
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
	return f.Close()
}

// LoadSigner reads a signer key file written by GenerateKeyFiles (one key;
// surrounding white space ignored). It refuses a file that group or others
// may read or write, as ssh does: a signer key that leaked can sign any
// history.
func LoadSigner(path string) (note.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load signer: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load signer: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("load signer: %s is accessible to group or others (mode %#o); chmod 600 it", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("load signer: %w", err)
	}
	// The message never quotes the file: it holds a secret.
	s, err := note.NewSigner(string(bytes.TrimSpace(data)))
	if err != nil {
		return nil, fmt.Errorf("load signer: %s: not a signer key (%v)", path, err)
	}
	return s, nil
}

// LoadVerifiers reads verifier key files: one key per line; blank lines and
// lines starting with '#' are skipped. The keys of all files are trusted
// together (for example the current key and the one before a rotation).
// Having no key at all is an error: an empty trust set would reject every
// checkpoint, and a caller that ignored that would verify nothing.
func LoadVerifiers(paths ...string) (note.Verifiers, error) {
	var keys []string
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("load verifiers: %w", err)
		}
		if len(data) > maxKeyFile {
			return nil, fmt.Errorf("load verifiers: %s: larger than %d bytes", path, maxKeyFile)
		}
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if _, err := note.NewVerifier(line); err != nil {
				return nil, fmt.Errorf("load verifiers: %s line %d: not a verifier key (%v)", path, i+1, err)
			}
			keys = append(keys, line)
		}
	}
	v, err := NewVerifiers(keys...)
	if err != nil {
		return nil, fmt.Errorf("load verifiers: %w", err)
	}
	return v, nil
}

// NewVerifiers returns the set of trusted verifier keys vkeys. A key given
// twice counts once; two different keys with the same name and key hash are
// an error (note.Open could not tell them apart).
func NewVerifiers(vkeys ...string) (note.Verifiers, error) {
	type id struct {
		name string
		hash uint32
	}
	seen := make(map[id]string)
	var list []note.Verifier
	for _, k := range vkeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("verifier key %q: %w", clip(k), err)
		}
		i := id{v.Name(), v.KeyHash()}
		if prev, ok := seen[i]; ok {
			if prev != k {
				return nil, fmt.Errorf("verifier keys %q and %q share name and key hash", clip(prev), clip(k))
			}
			continue
		}
		seen[i] = k
		list = append(list, v)
	}
	if len(list) == 0 {
		return nil, errors.New("no verifier keys")
	}
	return note.VerifierList(list...), nil
}
