package checkpoint

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestStateRoundTrip(t *testing.T) {
	signer, v := testVerifiers(t)
	hashes := synth(100)
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")

	if _, err := ReadState(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadState of a missing file: %v, want fs.ErrNotExist", err)
	}
	for _, n := range []int{10, 100} { // the second write replaces the first
		s := StateOf(mustOpen(t, signAt(t, signer, hashes, n), v))
		if err := WriteState(path, s); err != nil {
			t.Fatal(err)
		}
		got, err := ReadState(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != s {
			t.Fatalf("read %+v, wrote %+v", got, s)
		}
		cp, err := got.Open(v)
		if err != nil || cp.Size != int64(n) {
			t.Fatalf("Open: %+v, %v", cp, err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("state mode %#o, want 0600", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("the directory holds %d files, want only the state (no temporary files left)", len(ents))
	}
	data, _ := os.ReadFile(path)
	golden(t, "state.golden", data)
}

func TestStateTampered(t *testing.T) {
	signer, v := testVerifiers(t)
	s := StateOf(mustOpen(t, signAt(t, signer, synth(100), 100), v))

	bigger := s
	bigger.Size = 120
	if _, err := bigger.Open(v); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a state whose size disagrees with its note: %v, want ErrMalformed", err)
	}
	other := s
	other.Root = rootOf(t, synth(100), 99).String()
	if _, err := other.Open(v); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a state whose root disagrees with its note: %v, want ErrMalformed", err)
	}
	forged := s
	forged.Note = s.Note[:len(testOrigin)+1] + "120" + s.Note[len(testOrigin)+4:]
	if _, err := forged.Open(v); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a state with an edited note: %v, want ErrBadSignature", err)
	}

	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown-field": `{"origin":"o","size":1,"root":"` + s.Root + `","note":"n","extra":1}`,
		"trailing":      `{"origin":"o","size":1,"root":"` + s.Root + `","note":"n"} {}`,
		"no-note":       `{"origin":"o","size":1,"root":"` + s.Root + `"}`,
		"bad-root":      `{"origin":"o","size":1,"root":"abc","note":"n"}`,
		"negative":      `{"origin":"o","size":-1,"root":"` + s.Root + `","note":"n"}`,
		"not-json":      `origin o`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := ReadState(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ReadState = %v, want ErrMalformed", name, err)
		}
	}
}
