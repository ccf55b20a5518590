package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// RotationHeader is the first line of a key rotation announcement.
const RotationHeader = "auditpipe key rotation v1"

// SignRotation returns a key rotation announcement: a signed note
//
//	auditpipe key rotation v1
//	<origin>
//	<the new verifier key>
//
// signed by the old key (the authority: verifiers that trust it follow the
// rotation) and by the new key (proof that whoever rotates holds it). It
// goes into the checkpoint file as a line {"rotation":"<note>"}
// (AppendRotation); verify then trusts the new key wherever it trusts the
// old one, following a chain of rotations. A rotation is not a revocation:
// the old key stays trusted; to stop trusting it, give verifiers the new
// key alone.
func SignRotation(old, new note.Signer, origin, newVKey string) ([]byte, error) {
	v, err := note.NewVerifier(strings.TrimSpace(newVKey))
	if err != nil {
		return nil, fmt.Errorf("sign rotation: new verifier key: %w", err)
	}
	if v.Name() != new.Name() || v.KeyHash() != new.KeyHash() {
		return nil, errors.New("sign rotation: the new verifier key is not the new signer's")
	}
	if err := CheckName(origin); err != nil {
		return nil, fmt.Errorf("sign rotation: origin %q: %w", origin, err)
	}
	text := RotationHeader + "\n" + origin + "\n" + strings.TrimSpace(newVKey) + "\n"
	return note.Sign(&note.Note{Text: text}, old, new)
}

// AppendRotation writes one checkpoint-file line {"rotation":"<note>"}.
func AppendRotation(w io.Writer, msg []byte) error {
	b := appendJSONString([]byte(`{"rotation":`), string(msg))
	b = append(b, "}\n"...)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("append rotation: %w", err)
	}
	return nil
}

// rotation is a rotation line read from a checkpoint file.
type rotation struct {
	msg  []byte
	line int64
	done bool
}

// trustSet is the trusted keys: the given ones, then those added by key
// rotations.
type trustSet struct {
	base  note.Verifiers
	extra []note.Verifier
}

func (t *trustSet) Verifier(name string, hash uint32) (note.Verifier, error) {
	v, err := t.base.Verifier(name, hash)
	if err == nil {
		return v, nil
	}
	for _, x := range t.extra {
		if x.Name() == name && x.KeyHash() == hash {
			return x, nil
		}
	}
	return nil, err
}

// followRotations applies the rotation lines whose old key is trusted,
// repeatedly (a chain may be listed in any order). Each that cannot be
// followed is a finding.
func (c *Checker) followRotations() {
	for progress := true; progress; {
		progress = false
		for _, r := range c.rotations {
			if r.done {
				continue
			}
			if _, err := note.Open(r.msg, c.trust); err != nil {
				var unknown *note.UnverifiedNoteError
				if errors.As(err, &unknown) {
					continue // perhaps after another rotation
				}
				r.done = true
				c.noteProblem(fmt.Errorf("key rotation: %w: %v", ErrBadSignature, err), r.line, r.msg, fmt.Sprintf("the key rotation at line %d", r.line))
				continue
			}
			r.done = true
			progress = true
			c.applyRotation(r)
		}
	}
	for _, r := range c.rotations {
		if !r.done {
			c.add1(Finding{Reason: ReasonUnknownKey, Line: r.line, Notes: []string{string(r.msg)},
				Detail: fmt.Sprintf("the key rotation at line %d is not signed by a trusted key (nor by one a followed rotation added): its new key is not trusted", r.line)})
		}
	}
}

func (c *Checker) applyRotation(r *rotation) {
	bad := func(format string, args ...any) {
		c.add1(Finding{Reason: ReasonMalformed, Line: r.line, Notes: []string{string(r.msg)},
			Detail: fmt.Sprintf("the key rotation at line %d: ", r.line) + fmt.Sprintf(format, args...)})
	}
	text := string(r.msg[:strings.Index(string(r.msg), "\n\n")+1])
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 3 || lines[0] != RotationHeader {
		bad("not %q, origin and new key lines", RotationHeader)
		return
	}
	if lines[1] != c.opt.Origin {
		c.add1(Finding{Reason: ReasonOriginMismatch, Line: r.line, Notes: []string{string(r.msg)},
			Detail: fmt.Sprintf("the key rotation at line %d is validly signed but of origin %q, not this log's %q", r.line, lines[1], c.opt.Origin)})
		return
	}
	nv, err := note.NewVerifier(lines[2])
	if err != nil {
		bad("new key: %v", err)
		return
	}
	if _, err := note.Open(r.msg, note.VerifierList(nv)); err != nil {
		bad("not signed by its new key %s+%08x (%v)", nv.Name(), nv.KeyHash(), err)
		return
	}
	if _, err := c.trust.Verifier(nv.Name(), nv.KeyHash()); err == nil {
		return // already trusted
	}
	c.trust.extra = append(c.trust.extra, nv)
	c.rotated = append(c.rotated, fmt.Sprintf("line %d: %s+%08x", r.line, nv.Name(), nv.KeyHash()))
}

// FollowRotations returns the trusted keys vs extended by the keys that
// the key rotation notes announce, followed from vs as verify follows them,
// and the findings about rotations that could not be followed.
func FollowRotations(vs note.Verifiers, origin string, rotations [][]byte) (note.Verifiers, []Finding) {
	c := &Checker{opt: Options{Verifiers: vs, Origin: origin}, trust: &trustSet{base: vs}}
	for i, r := range rotations {
		c.rotations = append(c.rotations, &rotation{msg: r, line: int64(i + 1)})
	}
	c.followRotations()
	return c.trust, c.findings
}
