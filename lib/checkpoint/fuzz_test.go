package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// The committed corpora live in testdata/fuzz/<Fuzz name>; f.Add below seeds
// the most telling cases too.

// fuzzNotes are signed checkpoints to seed with: well formed, cosigned,
// with an extension line, and a few near misses.
func fuzzNotes(tb testing.TB) [][]byte {
	signer, _ := testVerifiers(tb)
	other, _ := testKey(tb, "other.test/key")
	hashes := synth(9)
	root := rootOf(tb, hashes, 9).String()
	sign := func(text string, s ...note.Signer) []byte {
		msg, err := note.Sign(&note.Note{Text: text}, s...)
		if err != nil {
			tb.Fatal(err)
		}
		return msg
	}
	return [][]byte{
		signAt(tb, signer, hashes, 9),
		signAt(tb, signer, hashes, 1),
		sign(testOrigin+"\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", signer),
		sign(testOrigin+"\n9\n"+root+"\n", signer, other),
		sign(testOrigin+"\n9\n"+root+"\nx-extension\n", signer),
		sign(testOrigin+"\n09\n"+root+"\n", signer),
		sign(testOrigin+"\n9\n"+root+"\n", other),
		[]byte(testOrigin + "\n9\n" + root + "\n"),
		[]byte(testOrigin + "\n9\n" + root + "\n\n— " + testOrigin + " AAAA\n"),
		[]byte(""),
	}
}

// checkRoundTrip checks what an accepted note must satisfy: the note is
// kept verbatim, its text is exactly the body formatted from the fields,
// and it opens again to the same checkpoint.
func checkRoundTrip(t *testing.T, cp Checkpoint, msg []byte, v note.Verifiers) {
	t.Helper()
	if !bytes.Equal(cp.Note, msg) {
		t.Fatalf("Note %q is not the input %q", cp.Note, msg)
	}
	text := string(msg[:bytes.LastIndex(msg, []byte("\n\n"))+1])
	if body := formatBody(cp.Origin, cp.Size, cp.Root, cp.Extensions); body != text {
		t.Fatalf("accepted text %q formats back as %q", text, body)
	}
	again, err := Open(cp.Note, v)
	if err != nil || !reflect.DeepEqual(again, cp) {
		t.Fatalf("reopening gave %+v, %v; want %+v", again, err, cp)
	}
}

func FuzzOpen(f *testing.F) {
	signer, v := testVerifiers(f)
	for _, n := range fuzzNotes(f) {
		f.Add(n)
		if i := bytes.LastIndex(n, []byte("\n\n")); i >= 0 {
			f.Add(n[:i+1]) // the body alone, to be signed below
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cp, err := Open(msg, v)
		switch {
		case err == nil:
			checkRoundTrip(t, cp, msg, v)
		case !isOpenError(err):
			t.Fatalf("Open(%q): untyped error %v", msg, err)
		}

		// The input as the text of a note signed by the trusted key: the
		// body parser, behind a valid signature. It may only be malformed.
		if len(msg) > MaxNoteSize/2 {
			return
		}
		signed, err := note.Sign(&note.Note{Text: string(msg)}, signer)
		if err != nil {
			return // not a note text (no final newline)
		}
		cp, err = Open(signed, v)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("text %q signed by the trusted key: %v, want nil or ErrMalformed", msg, err)
			}
			return
		}
		checkRoundTrip(t, cp, signed, v)
		if cp.Extensions == nil && CheckName(cp.Origin) == nil {
			again, err := Sign(signer, cp.Origin, cp.Size, cp.Root)
			if err != nil || !bytes.Equal(again, signed) {
				t.Fatalf("Sign(%q, %d, %v) = %q, %v; want %q", cp.Origin, cp.Size, cp.Root, again, err, signed)
			}
		}
	})
}

func fuzzProofs(tb testing.TB) [][]byte {
	signer, v := testVerifiers(tb)
	recs := chainOf(9, nil)
	hashes := hashesOf(recs)
	store := storeOf(tb, hashes)
	cp := mustOpen(tb, signAt(tb, signer, hashes, 9), v)
	var out [][]byte
	for _, seq := range []int64{1, 8} {
		p, err := NewProof(store, cp, recs[seq-1].line())
		if err != nil {
			tb.Fatal(err)
		}
		var b bytes.Buffer
		WriteProof(&b, p)
		out = append(out, b.Bytes())
		p.Record, p.PrevHash = nil, ""
		b.Reset()
		WriteProof(&b, p)
		out = append(out, b.Bytes())
	}
	return append(out, []byte(`{"format":"auditpipe-inclusion-proof-v1","seq":1,"seq":2}`), []byte(`{}`), []byte(`[`))
}

func FuzzVerifyProof(f *testing.F) {
	_, v := testVerifiers(f)
	for _, p := range fuzzProofs(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProof(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrRecordMismatch) {
				t.Fatalf("ParseProof(%q): untyped error %v", data, err)
			}
			return
		}
		var out bytes.Buffer
		if err := WriteProof(&out, p); err != nil {
			t.Fatalf("a parsed bundle does not write: %v", err)
		}
		p2, err := ParseProof(&out)
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", data, p2, err, p)
		}
		seq, hash, cp, err := VerifyProof(bytes.NewReader(data), v)
		if err == nil && (seq != p.Seq || hash != p.RecordHash || !bytes.Equal(cp.Note, p.Checkpoint)) {
			t.Fatalf("VerifyProof = %d, %s, %q; the bundle says %d, %s, %q", seq, hash, cp.Note, p.Seq, p.RecordHash, p.Checkpoint)
		}
	})
}

func FuzzReadCheckpoints(f *testing.F) {
	_, v := testVerifiers(f)
	for _, n := range fuzzNotes(f) {
		var b bytes.Buffer
		AppendCheckpoint(&b, n)
		f.Add(b.Bytes())
	}
	f.Add([]byte("\n\n{\"checkpoint\":1}\nnot json\n{\"checkpoint\":\"x\"}{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := NewChecker(Options{Verifiers: v, Origin: testOrigin})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ReadCheckpoints(context.Background(), bytes.NewReader(data)); err != nil {
			t.Fatalf("ReadCheckpoints(%q) = %v: only I/O fails", data, err)
		}
		rep := c.Finish()
		for _, fi := range rep.Findings {
			switch fi.Reason {
			case ReasonMalformed, ReasonBadSignature, ReasonUnknownKey, ReasonOriginMismatch, ReasonEquivocation, ReasonTruncatedTail:
			default:
				t.Fatalf("with no records: finding %v", fi)
			}
		}
	})
}
