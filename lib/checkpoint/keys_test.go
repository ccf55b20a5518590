package checkpoint

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestGenerateKeyFiles(t *testing.T) {
	old := syscall.Umask(0o077) // the modes must not depend on the umask
	defer syscall.Umask(old)
	dir := t.TempDir()
	sk, vk := filepath.Join(dir, "log.key"), filepath.Join(dir, "log.pub")
	vkey, err := GenerateKeyFiles(testOrigin, sk, vk)
	if err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]fs.FileMode{sk: 0o600, vk: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %#o, want %#o", path, fi.Mode().Perm(), mode)
		}
	}
	data, _ := os.ReadFile(vk)
	if string(data) != vkey+"\n" {
		t.Fatalf("verifier file %q, want %q", data, vkey+"\n")
	}
	if sdata, _ := os.ReadFile(sk); !strings.HasPrefix(string(sdata), "PRIVATE+KEY+"+testOrigin+"+") {
		t.Fatalf("signer file does not hold a signer key of %s", testOrigin)
	}

	signer, err := LoadSigner(sk)
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadVerifiers(vk)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := Sign(signer, testOrigin, 1, rootOf(t, synth(1), 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(msg, v); err != nil {
		t.Fatalf("a checkpoint signed with the generated key does not open: %v", err)
	}

	// Never overwrite a key.
	before, _ := os.ReadFile(sk)
	if _, err := GenerateKeyFiles(testOrigin, sk, filepath.Join(dir, "new.pub")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwriting the signer key: %v, want fs.ErrExist", err)
	}
	if _, err := GenerateKeyFiles(testOrigin, filepath.Join(dir, "new.key"), vk); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwriting the verifier key: %v, want fs.ErrExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a failed GenerateKeyFiles left a signer key behind")
	}
	if after, _ := os.ReadFile(sk); string(after) != string(before) {
		t.Fatal("the signer key was changed")
	}

	// A signer key others can read is refused.
	if err := os.Chmod(sk, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(sk); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("LoadSigner of a 0640 key: %v", err)
	}
	if _, err := GenerateKeyFiles("bad name", filepath.Join(dir, "a"), filepath.Join(dir, "b")); err == nil {
		t.Fatal("a key name with a space was accepted")
	}
}

func TestGenerateKey(t *testing.T) {
	s1, v1, err := GenerateKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	_, v2, _ := GenerateKey(testOrigin)
	if v1 == v2 {
		t.Fatal("two generated keys are equal")
	}
	if !strings.HasPrefix(s1, "PRIVATE+KEY+"+testOrigin+"+") || !strings.HasPrefix(v1, testOrigin+"+") {
		t.Fatalf("keys %q / %q are not in note's text form", s1[:20], v1)
	}
}

func TestLoadVerifiers(t *testing.T) {
	dir := t.TempDir()
	_, a := testKey(t, "a.test/log")
	_, b := testKey(t, "b.test/log")
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	both := write("both", "# current and previous key\n\n"+a+"\n  "+b+"  \n"+a+"\n")
	if _, err := LoadVerifiers(both); err != nil {
		t.Fatal(err)
	}
	empty := write("empty", "# nothing\n")
	if _, err := LoadVerifiers(empty); err == nil {
		t.Fatal("no keys at all was accepted")
	}
	if _, err := LoadVerifiers(); err == nil {
		t.Fatal("no files at all was accepted")
	}
	bad := write("bad", a+"\nnot-a-key\n")
	if _, err := LoadVerifiers(bad); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a bad key: %v, want an error naming line 2", err)
	}
	if _, err := LoadVerifiers(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing file: %v", err)
	}
	// Same name and key hash, other key: cannot be told apart.
	i := strings.LastIndexByte(a, '+')
	clash := a[:i+1] + b[strings.LastIndexByte(b, '+')+1:]
	if _, err := NewVerifiers(a, clash); err == nil {
		t.Fatal("two keys with one name and key hash were accepted")
	}
}
