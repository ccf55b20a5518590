package checkpoint

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TestMain lets the test binary act as an external signer: with
// AUDITPIPE_TEST_SIGNER set it signs stdin with the Ed25519 seed in it
// (base64), or misbehaves as told by AUDITPIPE_TEST_SIGNER_MODE.
func TestMain(m *testing.M) {
	if seed := os.Getenv("AUDITPIPE_TEST_SIGNER"); seed != "" {
		raw, _ := base64.StdEncoding.DecodeString(seed)
		msg, _ := io.ReadAll(os.Stdin)
		switch os.Getenv("AUDITPIPE_TEST_SIGNER_MODE") {
		case "fail":
			fmt.Fprintln(os.Stderr, "HSM unavailable")
			os.Exit(1)
		case "garbage":
			fmt.Println("not base64!")
			os.Exit(0)
		case "other-message":
			msg = append(msg, 'x')
		}
		if os.Getenv("AUDITPIPE_SIGNER_PROTOCOL") != "1" || os.Getenv("AUDITPIPE_SIGNER_KEY_NAME") == "" {
			os.Exit(9)
		}
		fmt.Println(base64.StdEncoding.EncodeToString(ed25519.Sign(ed25519.NewKeyFromSeed(raw), msg)))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// vkeyOf returns the note verifier key of an Ed25519 key.
func vkeyOf(name string, pub ed25519.PublicKey) string {
	v, _ := note.NewEd25519VerifierKey(name, pub)
	return v
}

func TestExternalSigner(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	vkey := vkeyOf("example.com/log", pub)
	t.Setenv("AUDITPIPE_TEST_SIGNER", base64.StdEncoding.EncodeToString(priv.Seed()))
	var root tlog.Hash
	for _, tc := range []struct{ mode, want string }{
		{"", ""},
		{"fail", "exit status 1: HSM unavailable"},
		{"garbage", "is not the base64 of a 64-byte Ed25519 signature"},
		{"other-message", "the signature does not verify against example.com/log+"},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			t.Setenv("AUDITPIPE_TEST_SIGNER_MODE", tc.mode)
			s, err := NewExternalSigner(os.Args[0]+" -test.run=^$", vkey)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := Sign(s, "example.com/log", 5, root)
			if tc.want == "" {
				vs, _ := NewVerifiers(vkey)
				if cp, err := Open(msg, vs); err != nil || cp.Size != 5 {
					t.Fatalf("Sign = %q, %v; Open: %v", msg, err, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Sign: %v, want %q", err, tc.want)
			}
		})
	}
	// A signer whose key is not the one given: every signature refused.
	_, other, _ := ed25519.GenerateKey(nil)
	t.Setenv("AUDITPIPE_TEST_SIGNER", base64.StdEncoding.EncodeToString(other.Seed()))
	t.Setenv("AUDITPIPE_TEST_SIGNER_MODE", "")
	s, _ := NewExternalSigner(os.Args[0]+" -test.run=^$", vkey)
	if _, err := Sign(s, "example.com/log", 5, root); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestOpenSigner(t *testing.T) {
	dir := t.TempDir()
	skeyPath, vkeyPath := filepath.Join(dir, "k"), filepath.Join(dir, "k.pub")
	if _, err := GenerateKeyFiles("example.com/log", skeyPath, vkeyPath); err != nil {
		t.Fatal(err)
	}
	skey, _ := os.ReadFile(skeyPath)
	t.Setenv("CKPT_KEY", strings.TrimSpace(string(skey)))
	t.Setenv("NOT_A_KEY", "hunter2")
	loose := filepath.Join(dir, "loose")
	os.WriteFile(loose, skey, 0o644)
	ctx := context.Background()
	for _, tc := range []struct{ ref, want string }{
		{skeyPath, ""},
		{"file:" + skeyPath, ""},
		{"env:CKPT_KEY", ""},
		{"${secret:env:CKPT_KEY}", ""},
		{"exec:cat " + skeyPath, ""},
		{"env:NOT_A_KEY", "env:NOT_A_KEY does not hold a signer key"},
		{"env:MISSING_KEY", "resolve secret env:MISSING_KEY"},
		{"file:" + loose, "is accessible to group or others"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			s, err := OpenSigner(ctx, tc.ref)
			if tc.want == "" {
				if err != nil || s.Name() != "example.com/log" {
					t.Fatalf("OpenSigner = %v, %v", s, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("OpenSigner(%q) = %v, want %q (and no secret)", tc.ref, err, tc.want)
			}
		})
	}
}
