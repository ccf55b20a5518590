package checkpoint

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/auditpipe/auditpipe/lib/canon"
	"github.com/auditpipe/auditpipe/lib/chain"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ProofFormat is the value of the "format" member of an inclusion proof
// bundle.
const ProofFormat = "auditpipe-inclusion-proof-v1"

// MaxProofSize bounds a proof bundle read by ParseProof: a record of up to
// ndjson.DefaultMaxLine bytes and room for the rest.
const MaxProofSize = 8 << 20

// ErrRecordMismatch: a record does not hash (with its prevHash) to its
// recordHash.
var ErrRecordMismatch = errors.New("record does not match its recordHash")

// Proof is an inclusion proof bundle: everything an auditor needs to check,
// offline and with nothing but the verifier key, that a record is in the
// log as of a signed checkpoint. Its file form is one JSON object on one
// line, members in this order:
//
//	{"format":"auditpipe-inclusion-proof-v1",
//	 "seq":42,
//	 "recordHash":"<64 hex>",
//	 "prevHash":"<64 hex or empty>",      (optional, with record)
//	 "record":{...},                       (optional: canonical JSON)
//	 "proof":["<base64 hash>",...],        (tlog.RecordProof order)
//	 "checkpoint":"<signed checkpoint note>"}
//
// With record and prevHash, SHA-256(prevHash + "\n" + record) must be the
// recordHash exactly (the record's bytes are its canonical form, docs/contract.md
// section 3), so the bundle proves the record's content, not only its hash.
// The record line's own seq/ts/tenantId/kind fields are not hashed by the
// chain, so the bundle does not carry them: it holds only what it proves.
type Proof struct {
	Seq        int64
	RecordHash string // 64 lowercase hex
	PrevHash   string // "" for seq 1; only meaningful with Record
	Record     []byte // optional: the record's canonical JSON
	Hashes     tlog.RecordProof
	Checkpoint []byte // the signed checkpoint note
}

// NewHashProof returns the proof bundle that the record with seq and
// recordHash is in cp's tree, made from store (which must hold at least
// cp.Size records of the same log). The proof is checked against cp before
// it is returned, so a store that does not match cp is an error.
func NewHashProof(store HashStore, cp Checkpoint, seq int64, recordHash string) (Proof, error) {
	hs, err := ProveInclusion(store, cp.Size, seq)
	if err != nil {
		return Proof{}, err
	}
	if err := CheckInclusion(cp, seq, []byte(recordHash), hs); err != nil {
		return Proof{}, fmt.Errorf("new proof: the store does not match the checkpoint: %w", err)
	}
	return Proof{Seq: seq, RecordHash: recordHash, Hashes: hs, Checkpoint: bytes.Clone(cp.Note)}, nil
}

// NewProof is NewHashProof for a record line (docs/contract.md section 2): the
// bundle also carries the record, in canonical form, and its prevHash. A
// record that does not hash to its recordHash (an erased row, say) is
// ErrRecordMismatch: prove its hash alone with NewHashProof.
func NewProof(store HashStore, cp Checkpoint, line []byte) (Proof, error) {
	var lp chain.LineParser
	rec, err := lp.Parse(line)
	if err != nil {
		return Proof{}, fmt.Errorf("new proof: %w", err)
	}
	record := bytes.Clone(rec.Raw)
	if !recordMatches(string(rec.PrevHash), record, string(rec.RecordHash)) {
		canon, err := canon.Append(nil, rec.Raw)
		if err != nil || !recordMatches(string(rec.PrevHash), canon, string(rec.RecordHash)) {
			return Proof{}, fmt.Errorf("new proof: seq %d: %w", rec.Seq, ErrRecordMismatch)
		}
		record = canon
	}
	p, err := NewHashProof(store, cp, rec.Seq, string(rec.RecordHash))
	if err != nil {
		return Proof{}, err
	}
	p.PrevHash = string(rec.PrevHash)
	p.Record = record
	return p, nil
}

func recordMatches(prevHash string, record []byte, recordHash string) bool {
	sum := chain.Hash(prevHash, record)
	return hex.EncodeToString(sum[:]) == recordHash
}

// WriteProof writes p in its file form, followed by a newline. It checks
// p's form first (not the signature: the writer may not hold the key).
func WriteProof(w io.Writer, p Proof) error {
	if err := p.check(); err != nil {
		return fmt.Errorf("write proof: %w", err)
	}
	b := make([]byte, 0, 512+len(p.Record)+len(p.Checkpoint)+48*len(p.Hashes))
	b = append(b, `{"format":"`+ProofFormat+`","seq":`...)
	b = strconv.AppendInt(b, p.Seq, 10)
	b = append(b, `,"recordHash":"`...)
	b = append(b, p.RecordHash...)
	b = append(b, '"')
	if p.Record != nil {
		b = append(b, `,"prevHash":"`...)
		b = append(b, p.PrevHash...)
		b = append(b, `","record":`...)
		b = append(b, p.Record...)
	}
	b = append(b, `,"proof":[`...)
	for i, h := range p.Hashes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, h.String()...)
		b = append(b, '"')
	}
	b = append(b, `],"checkpoint":`...)
	b = appendJSONString(b, string(p.Checkpoint))
	b = append(b, "}\n"...)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write proof: %w", err)
	}
	return nil
}

func appendJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// check checks the form of a Proof: what ParseProof requires of a bundle.
func (p *Proof) check() error {
	if p.Seq < 1 {
		return fmt.Errorf("%w: seq %d is not positive", ErrMalformed, p.Seq)
	}
	if _, err := decodeRecordHash([]byte(p.RecordHash)); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if p.Record != nil {
		if p.PrevHash != "" {
			if _, err := decodeRecordHash([]byte(p.PrevHash)); err != nil {
				return fmt.Errorf("%w: prevHash: %v", ErrMalformed, err)
			}
		}
		if len(p.Record) == 0 || p.Record[0] != '{' || !json.Valid(p.Record) {
			return fmt.Errorf("%w: record is not a JSON object", ErrMalformed)
		}
		if !recordMatches(p.PrevHash, p.Record, p.RecordHash) {
			return fmt.Errorf("seq %d: %w (the record must be in canonical form)", p.Seq, ErrRecordMismatch)
		}
	} else if p.PrevHash != "" {
		return fmt.Errorf("%w: prevHash without record", ErrMalformed)
	}
	if len(p.Checkpoint) == 0 {
		return fmt.Errorf("%w: no checkpoint", ErrMalformed)
	}
	return nil
}

// proofMembers are the members of a bundle, in the order WriteProof writes
// them.
var proofMembers = []string{"format", "seq", "recordHash", "prevHash", "record", "proof", "checkpoint"}

// ParseProof reads a proof bundle and checks its form, and the record
// against its recordHash if the bundle has one. It is strict: members are
// matched exactly (no unknown, repeated or missing members), numbers and
// hashes have one spelling, and nothing but a newline may follow the
// object, so that every byte of an accepted bundle matters. It does not
// check the signature or the proof: VerifyProof does.
func ParseProof(r io.Reader) (Proof, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxProofSize+1))
	if err != nil {
		return Proof{}, fmt.Errorf("parse proof: %w", err)
	}
	if len(data) > MaxProofSize {
		return Proof{}, fmt.Errorf("parse proof: %w: larger than %d bytes", ErrMalformed, MaxProofSize)
	}
	members, err := strictObject(data, true)
	if err != nil {
		return Proof{}, fmt.Errorf("parse proof: %w: %v", ErrMalformed, err)
	}
	var p Proof
	bad := func(format string, args ...any) (Proof, error) {
		return Proof{}, fmt.Errorf("parse proof: %w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	for _, k := range []string{"format", "seq", "recordHash", "proof", "checkpoint"} {
		if _, ok := members[k]; !ok {
			return bad("no %q member", k)
		}
	}
	_, hasPrev := members["prevHash"]
	_, hasRecord := members["record"]
	if hasPrev != hasRecord {
		return bad(`"prevHash" and "record" come together`)
	}
	for k := range members {
		if !slices.Contains(proofMembers, k) {
			return bad("unknown member %q", clip(k))
		}
	}
	for _, k := range proofMembers {
		v, ok := members[k]
		if !ok {
			continue
		}
		switch k {
		case "format":
			var s string
			if json.Unmarshal(v, &s) != nil || s != ProofFormat {
				return bad("format %s is not %q", clip(string(v)), ProofFormat)
			}
		case "seq":
			n, err := parseSize(string(v))
			if err != nil || n < 1 {
				return bad("seq %s is not a positive integer", clip(string(v)))
			}
			p.Seq = n
		case "recordHash":
			if json.Unmarshal(v, &p.RecordHash) != nil {
				return bad("recordHash is not a string")
			}
		case "prevHash":
			if json.Unmarshal(v, &p.PrevHash) != nil {
				return bad("prevHash is not a string")
			}
		case "record":
			p.Record = bytes.Clone(v)
		case "proof":
			var hs []string
			if json.Unmarshal(v, &hs) != nil || hs == nil {
				return bad("proof is not an array of strings")
			}
			p.Hashes = make(tlog.RecordProof, len(hs))
			for i, s := range hs {
				h, err := parseHash(s)
				if err != nil {
					return bad("proof hash %d: %v", i+1, err)
				}
				p.Hashes[i] = h
			}
		case "checkpoint":
			var s string
			if json.Unmarshal(v, &s) != nil {
				return bad("checkpoint is not a string")
			}
			p.Checkpoint = []byte(s)
		}
	}
	if err := p.check(); err != nil {
		return Proof{}, fmt.Errorf("parse proof: %w", err)
	}
	return p, nil
}

// VerifyProof reads a proof bundle (ParseProof), opens its checkpoint with
// the trusted verifiers (Open: ErrUnknownKey, ErrBadSignature, ErrMalformed)
// and checks the inclusion proof (ErrNotIncluded). If the bundle has the
// record, its content was checked against recordHash too. It returns the
// record's seq and recordHash and the checkpoint; the caller checks that
// cp.Origin is the log it cares about.
func VerifyProof(r io.Reader, verifiers note.Verifiers) (seq int64, recordHash string, cp Checkpoint, err error) {
	p, err := ParseProof(r)
	if err != nil {
		return 0, "", Checkpoint{}, fmt.Errorf("verify proof: %w", err)
	}
	cp, err = Open(p.Checkpoint, verifiers)
	if err != nil {
		return 0, "", Checkpoint{}, fmt.Errorf("verify proof: %w", err)
	}
	if err := CheckInclusion(cp, p.Seq, []byte(p.RecordHash), p.Hashes); err != nil {
		return 0, "", Checkpoint{}, fmt.Errorf("verify proof: %w", err)
	}
	return p.Seq, p.RecordHash, cp, nil
}

// strictObject parses data as one JSON object, optionally followed by a
// newline (and nothing else if exact; white space if not), and returns its
// members' raw values. Member names are matched exactly (encoding/json
// would fold case); a repeated name is an error.
func strictObject(data []byte, exact bool) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	members := make(map[string]json.RawMessage)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k := t.(string) // inside an object, a token before ':' is a name
		if _, dup := members[k]; dup {
			return nil, fmt.Errorf("member %q repeated", clip(k))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		members[k] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	rest := data[dec.InputOffset():]
	if exact {
		if len(rest) != 0 && string(rest) != "\n" {
			return nil, errors.New("data after the JSON object")
		}
	} else if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the JSON object")
	}
	if exact && len(data) > 0 && data[0] != '{' {
		return nil, errors.New("white space before the JSON object")
	}
	return members, nil
}
