// Package checkpoint adds signed checkpoints, in the manner of Certificate
// Transparency, to the audit log's hash chain.
//
// # Why
//
// The hash chain (lib/chain, docs/contract.md section 3) shows that each record
// follows the one before. It cannot show what is missing or what was
// replaced wholesale, because anyone with write access can recompute it:
//
//   - rows cut off the end leave a shorter chain that still verifies;
//   - a rewrite from some row on, with every later hash recomputed, verifies;
//   - a whole chain replaced by another verifies;
//   - the SIEM and the disk can hold two different chains (a fork) and each
//     verifies on its own.
//
// A checkpoint fixes the log's state at a size with a signature made by a
// key the log's writer does not hold. Any later state must contain it.
//
// # The tree
//
// The records form an RFC 6962 Merkle tree (golang.org/x/mod/sumdb/tlog,
// the Go checksum database's tree): leaf i, from 0, is the record with seq
// i+1, and its data is the 32 bytes of its recordHash (hex-decoded), so the
// leaf hash is SHA-256(0x00 || recordHash bytes). The tree covers the
// recordHashes only; that each recordHash matches its record and its
// predecessor is lib/chain's job, and the two checks are run together. A
// rewritten record either breaks the chain (lib/chain finds it) or, if the
// hashes were recomputed, changes every root from its row on (this package
// finds it).
//
// Builder computes the root while the records stream by, holding O(log n)
// hashes (the right frontier). MemStore holds all of tlog's stored hashes
// (about 64 bytes a record) for making proofs: ProveInclusion and
// ProveConsistency; CheckInclusion and CheckConsistency check them.
//
// # Checkpoints and keys
//
// A checkpoint is a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint)
// signed as a note (golang.org/x/mod/sumdb/note, Ed25519):
//
//	example.com/auditpipe/prod
//	1000
//	xiZ8+zaIeLJSkGOu81nkhNxFztekDjqR8jD+c6GmMsM=
//
//	— example.com/auditpipe/prod lUHje0ohvI8Wc+BB19xqslKiEpbs...
//
// The lines are the origin (the log's name), the size in decimal, and the
// root in standard base64. Sign makes one; Open verifies and parses one and
// fails closed: ErrUnknownKey if no trusted key signed it, ErrBadSignature if
// a trusted key's signature does not verify, ErrMalformed for anything not
// in the form (Open is stricter than note.Open, so that no byte of an
// accepted note can change: see TestOpenFlipEveryByte).
//
// GenerateKeyFiles writes the signer key (mode 0600) and verifier key
// (0644); LoadSigner refuses a signer key others may read; LoadVerifiers
// reads the trusted keys (several, across a rotation). Use the origin as the
// key name. The signer key belongs with the shipper, the process that sends
// records to the SIEM, never with the process that writes the log: a writer
// that can sign can sign its own rewrites.
//
// # Who signs what
//
// The shipper keeps a Builder over the records it has shipped and signs a
// checkpoint after each delivery (or every so often), appending the note to
// a local checkpoint file (AppendCheckpoint) and sending it to the SIEM with
// the batch, so that a copy lives where the log's writer cannot reach it.
// It should persist its frontier (Builder.Frontier, ResumeBuilder) and
// resume from it, checking the resumed root against its last checkpoint,
// rather than rebuild the tree from the database when it restarts: a signer
// that signs whatever the database holds signs a rewrite done while it was
// down (the Checker then reports inconsistent, after the fact).
//
// # Checking a log
//
// A Checker takes the trusted keys, the trusted state of the last run
// (State, kept with WriteState: temporary file, fsync, rename, mode 0600)
// and the checkpoints found (a checkpoint file, ReadCheckpoints, or notes
// one by one), then the log's records as (seq, recordHash, ts) from seq 1,
// and reports findings. It records the log's root at every signed size as
// the log streams by, and between consecutive signed sizes it builds the
// consistency proof from the log and checks it with tlog.CheckTree. Memory:
// the checkpoints, plus O(log n) hashes; not the log. The reason codes:
//
//	truncated_tail  the log is shorter than a signed size (which, and by
//	                how many records)
//	rewrite         the log's root at a signed size differs from the signed
//	                root: rows in (last matching size, first mismatching
//	                size] were rewritten; no larger checkpoint matches
//	replaced_chain  no signed root matches the log, not even the smallest
//	inconsistent    two validly signed checkpoints are not one history: the
//	                log matches the larger and not the smaller (the proof
//	                made from the log fails for the smaller). The trusted
//	                state counts as a checkpoint: a new checkpoint that does
//	                not extend it is reported so
//	equivocation    two validly signed checkpoints of one size with
//	                different roots (both notes in the finding)
//	rollback        the newest checkpoint presented is older than the
//	                trusted state
//	bad_signature   a trusted key's signature does not verify
//	unknown_key     no trusted key signed a checkpoint (fail closed)
//	malformed       a checkpoint, checkpoint-file line or state not in form
//	origin_mismatch a validly signed checkpoint of another log
//	unsealed_tail   records after the last signed size are older than the
//	                policy allows (Options.MaxUnsealed)
//	stream_break    the records were not seqs 1, 2, 3, ...: checkpoints past
//	                the break are not checked
//
// Every finding is an error and carries the seqs, the size, the line of the
// checkpoint and the notes concerned. Report.State is the new trusted state,
// set only when there is no finding. With no trusted state (the first run)
// the checkpoints are trusted on first use.
//
// # Proving a record to an auditor
//
// NewProof (or NewHashProof, for the hash alone: an erased row) makes an
// inclusion proof bundle and WriteProof writes it: one JSON line holding
// the seq, recordHash, optionally the record's canonical bytes and
// prevHash, the proof hashes and the signed checkpoint. VerifyProof checks
// it offline with nothing but the verifier key: the signature, the proof,
// and (if present) that the record hashes to its recordHash. It proves that
// the record was in the log as of the checkpoint; the record line's seq,
// ts, tenantId and kind fields outside "record" are not hashed by the chain,
// so the bundle does not carry them.
//
// # Formats
//
// Checkpoint file: NDJSON, one {"checkpoint":"<signed note>"} per line
// (other members ignored), appended by the signer. Trusted state:
// {"origin":...,"size":...,"root":"<base64>","note":"<signed note>"}.
// Proof bundle: see Proof. Examples are in testdata/*.golden.
//
// # What this cannot detect
//
//   - Anything in rows not yet covered by a checkpoint that left the host:
//     rows written after the last checkpoint can be rewritten, forged or
//     dropped freely (unsealed_tail bounds how long that window may stay
//     open), and so can rows whose only checkpoints were on the same disk,
//     if the attacker replaces checkpoints, state and log together. The
//     checks are only as good as the copies of the checkpoints held
//     elsewhere (the SIEM, a second host, a witness).
//   - A forged tombstone: an erased row keeps its recordHash, so the tree
//     cannot tell a legitimate erasure from content destroyed by an
//     attacker (lib/chain reports every tombstone as a notice).
//   - A compromised signer key, or a signer that signs whatever it is
//     given: it can sign a rewritten history. If an honest checkpoint of
//     the old history survives somewhere, the two are inconsistent (or
//     equivocate) and the check fails; if not, nothing can tell.
//   - A rollback of the verifier's own state file together with the
//     checkpoints: the state is only as safe as where it is kept.
//     Likewise, deleting the state file makes the next run trust on first
//     use.
//   - Rows that were wrong before they were first signed: a checkpoint
//     proves the log did not change after signing, not that it was true.
package checkpoint
