package checkpoint

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestSignOpen(t *testing.T) {
	signer, v := testVerifiers(t)
	hashes := synth(9)
	for _, n := range []int{0, 1, 7, 9} {
		root := rootOf(t, hashes, n)
		msg, err := Sign(signer, testOrigin, int64(n), root)
		if err != nil {
			t.Fatal(err)
		}
		body := testOrigin + "\n" + strconv.Itoa(n) + "\n" + base64.StdEncoding.EncodeToString(root[:]) + "\n"
		if !bytes.HasPrefix(msg, []byte(body+"\n— "+testOrigin+" ")) {
			t.Fatalf("size %d: note %q does not start with the C2SP body %q and a signature line", n, msg, body)
		}
		cp, err := Open(msg, v)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Origin != testOrigin || cp.Size != int64(n) || cp.Root != root || cp.Extensions != nil || !bytes.Equal(cp.Note, msg) {
			t.Fatalf("size %d: Open = %+v", n, cp)
		}
		msg[0] = 'X' // Note is a copy
		if cp.Note[0] == 'X' {
			t.Fatal("Checkpoint.Note aliases the input")
		}
	}
}

// TestGolden pins the checkpoint note format: Ed25519 signatures are
// deterministic, so the whole note is.
func TestGolden(t *testing.T) {
	signer, _ := testVerifiers(t)
	msg, err := Sign(signer, testOrigin, 1000, rootOf(t, synth(1000), 1000))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "checkpoint.golden", msg)
}

func TestSignRejects(t *testing.T) {
	signer, _ := testVerifiers(t)
	for _, origin := range []string{"", "a b", "a+b", "a\tb", "a\u00a0b", "\xff", "a\x7fb"} {
		if _, err := Sign(signer, origin, 1, tlog.Hash{}); err == nil {
			t.Errorf("Sign with origin %q did not fail", origin)
		}
	}
	if _, err := Sign(signer, testOrigin, -1, tlog.Hash{}); err == nil {
		t.Error("Sign of size -1 did not fail")
	}
	if _, err := Sign(nil, testOrigin, 1, tlog.Hash{}); err == nil {
		t.Error("Sign without a signer did not fail")
	}
}

// signText signs an arbitrary note text with the trusted test key, to test
// the body parser behind a valid signature.
func signText(t *testing.T, signer note.Signer, text string) []byte {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestOpenErrors(t *testing.T) {
	signer, v := testVerifiers(t)
	other, otherV := testKey(t, "other.test/key")
	root := rootOf(t, synth(3), 3).String()
	good := signText(t, signer, testOrigin+"\n3\n"+root+"\n")

	// A cosignature by an unknown key next to the trusted one is fine.
	cosigned, err := note.Sign(&note.Note{Text: testOrigin + "\n3\n" + root + "\n"}, signer, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cosigned, v); err != nil {
		t.Fatalf("cosigned note: %v", err)
	}
	// Extension lines are kept, so the body round-trips.
	ext := signText(t, signer, testOrigin+"\n3\n"+root+"\nx-ext one\n")
	if cp, err := Open(ext, v); err != nil || len(cp.Extensions) != 1 || cp.Extensions[0] != "x-ext one" {
		t.Fatalf("extension line: %+v, %v", cp, err)
	}

	sigLine := good[bytes.LastIndex(good, []byte("\n\n"))+2:]
	// The same signature with non-zero base64 padding bits: note.Open takes
	// it, Open must not. A signature is 4+64 bytes: base64 ends in one '='
	// and the character before it carries 4 bits and 2 zero padding bits.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b64 := string(sigLine[len("— "+testOrigin+" ") : len(sigLine)-1])
	last := strings.IndexByte(alphabet, b64[len(b64)-2])
	if !strings.HasSuffix(b64, "=") || strings.HasSuffix(b64, "==") || last&3 != 0 {
		t.Fatalf("unexpected signature encoding %q", b64)
	}
	noncanon := b64[:len(b64)-2] + alphabet[last|1:last|1+1] + "="
	noncanonMsg := bytes.Replace(good, []byte(b64), []byte(noncanon), 1)
	if _, err := note.Open(noncanonMsg, v); err != nil {
		t.Fatalf("the non-canonical signature test is void: note.Open rejects it too: %v", err)
	}

	for _, c := range []struct {
		name string
		msg  []byte
		v    note.Verifiers
		want error
	}{
		{"unknown key", signText(t, other, testOrigin+"\n3\n"+root+"\n"), v, ErrUnknownKey},
		{"no verifiers", good, nil, ErrUnknownKey},
		{"other trust set", good, mustVerifiers(t, otherV), ErrUnknownKey},
		{"bad signature", bytes.Replace(good, []byte("\n3\n"), []byte("\n4\n"), 1), v, ErrBadSignature},
		{"repeated signature line", append(bytes.Clone(good), sigLine...), v, ErrMalformed},
		{"non-canonical base64 signature", noncanonMsg, v, ErrMalformed},
		{"no signature", []byte(testOrigin + "\n3\n" + root + "\n"), v, ErrMalformed},
		{"too large", append(bytes.Repeat([]byte("x"), MaxNoteSize), good...), v, ErrMalformed},
		{"control character", signText(t, signer, testOrigin+"\n3\n"+root+"\r\n"), v, ErrMalformed},
		{"two lines", signText(t, signer, testOrigin+"\n3\n"), v, ErrMalformed},
		{"empty origin", signText(t, signer, "\n3\n"+root+"\n"), v, ErrMalformed},
		{"leading zero", signText(t, signer, testOrigin+"\n03\n"+root+"\n"), v, ErrMalformed},
		{"plus sign", signText(t, signer, testOrigin+"\n+3\n"+root+"\n"), v, ErrMalformed},
		{"negative", signText(t, signer, testOrigin+"\n-3\n"+root+"\n"), v, ErrMalformed},
		{"empty size", signText(t, signer, testOrigin+"\n\n"+root+"\n"), v, ErrMalformed},
		{"size overflow", signText(t, signer, testOrigin+"\n9223372036854775808\n"+root+"\n"), v, ErrMalformed},
		{"hex root", signText(t, signer, testOrigin+"\n3\n"+strings.Repeat("ab", 32)+"\n"), v, ErrMalformed},
		{"unpadded root", signText(t, signer, testOrigin+"\n3\n"+strings.TrimRight(root, "=")+"\n"), v, ErrMalformed},
		{"short root", signText(t, signer, testOrigin+"\n3\n"+base64.StdEncoding.EncodeToString(make([]byte, 31))+"\n"), v, ErrMalformed},
		{"non-canonical root", signText(t, signer, testOrigin+"\n3\n"+root[:42]+"B=\n"), v, ErrMalformed},
		{"empty extension line", signText(t, signer, testOrigin+"\n3\n"+root+"\n\nx\n"), v, ErrMalformed},
	} {
		_, err := Open(c.msg, c.v)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Open = %v, want %v", c.name, err, c.want)
		}
	}
}

func mustVerifiers(t *testing.T, vkeys ...string) note.Verifiers {
	t.Helper()
	v, err := NewVerifiers(vkeys...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOpenFlipEveryByte: no single-byte change to a signed checkpoint is
// accepted, whatever the byte (body, blank line, signature line, newline).
func TestOpenFlipEveryByte(t *testing.T) {
	signer, v := testVerifiers(t)
	hashes := synth(1000)
	for _, n := range testSizes {
		msg := signAt(t, signer, hashes, n)
		for i := range msg {
			for _, m := range flips {
				msg[i] ^= m
				cp, err := Open(msg, v)
				if err == nil {
					t.Fatalf("size %d: byte %d ^%#x (%q) accepted: %+v", n, i, m, msg, cp)
				}
				if !isOpenError(err) {
					t.Fatalf("size %d: byte %d ^%#x: untyped error %v", n, i, m, err)
				}
				msg[i] ^= m
			}
		}
		// Dropping any byte is refused too.
		for i := range msg {
			cut := append(bytes.Clone(msg[:i]), msg[i+1:]...)
			if _, err := Open(cut, v); err == nil {
				t.Fatalf("size %d: dropping byte %d accepted", n, i)
			}
		}
		if _, err := Open(msg, v); err != nil {
			t.Fatalf("size %d: the restored note fails: %v", n, err)
		}
	}
}
