package ship

import (
	"github.com/auditpipe/auditpipe/lib/ack"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// Checkpoint lines (framing.IsCheckpoint, from audit-checkpoint seal
// --emit-checkpoints) travel in batches beside the records and are sent,
// retried, split and quarantined like them; the ack of a batch covers its
// records only, since audit-ack moves a cursor of seqs. Because acks are
// released in batch order and only for batches delivered whole, a cursor
// at seq N means every checkpoint line before record N's batch end is in
// the SIEM; the lines after it are re-emitted by seal when the pipeline
// restarts at N+1 (docs/design.md, "Checkpoints in the SIEM").

// hasCheckpoints reports whether b holds a checkpoint line.
func hasCheckpoints(b *Batch) bool {
	for i := range b.Records {
		if b.Records[i].Checkpoint != nil {
			return true
		}
	}
	return false
}

// ackOfRecords is ackOf for a batch with checkpoint lines: the ack of its
// records alone, none if it has no record.
func ackOfRecords(exporter string, b *Batch) (ack.Ack, bool) {
	var a ack.Ack
	n := 0
	for i := range b.Records {
		r := &b.Records[i]
		if r.Checkpoint != nil {
			continue
		}
		if n == 0 {
			a.FirstSeq = r.Seq
		}
		a.LastSeq, a.LastHash = r.Seq, r.Hash
		n++
		if i < len(b.Status) && b.Status[i] == sink.Poison {
			a.Quarantined = append(a.Quarantined, r.Seq)
		}
	}
	if n == 0 {
		return ack.Ack{}, false
	}
	a.Exporter, a.Count = exporter, n
	return a, true
}
