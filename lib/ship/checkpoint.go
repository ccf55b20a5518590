package ship

import (
	"fmt"

	"github.com/auditpipe/auditpipe/lib/exitcode"
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

// recordsOnly returns a copy of b (every other field as it is) holding
// only its records, for ackOf: the ack of a batch with checkpoint lines is
// the ack of its records; none if it has no record.
func recordsOnly(b *Batch) *Batch {
	nb := *b
	nb.Records, nb.Status = nil, nil
	nb.pooled = false // a view of b: b's memory is released with b
	for i := range b.Records {
		if b.Records[i].Checkpoint != nil {
			continue
		}
		nb.Records = append(nb.Records, b.Records[i])
		if i < len(b.Status) {
			nb.Status = append(nb.Status, b.Status[i])
		}
	}
	return &nb
}

// checkpointPoison is handlePoison for a checkpoint line the SIEM (or the
// sink) refused: quarantined with its line like a record, or a pause, and
// said as a checkpoint, not as a record.
func (sh *Shipper) checkpointPoison(r *sink.Record, why string) error {
	sh.opt.Metrics.failure(false, "poison")
	if sh.opt.Quarantine == nil {
		return sh.pause(exitcode.Paused, fmt.Errorf("the checkpoint line of size %d was refused: %s; set --quarantine FILE to set such lines aside and go on", r.Seq, why))
	}
	if err := sh.opt.Quarantine.Put(sh.opt.Exporter, r, why); err != nil {
		return sh.pause(exitcode.Paused, fmt.Errorf("quarantine the checkpoint line of size %d: %w", r.Seq, err))
	}
	sh.opt.Metrics.Quarantined.Add(1)
	fmt.Fprintf(sh.opt.Log, "audit-ship: %s: the checkpoint line of size %d was refused, quarantined in %s: %s\n", sh.opt.Exporter, r.Seq, sh.opt.Quarantine.Path(), why)
	if n := sh.consecutive.Add(1); n >= int64(sh.opt.PauseAfter) {
		return sh.pause(exitcode.Paused, fmt.Errorf("%d consecutive non-retryable failures (the last: the checkpoint line of size %d refused)", n, r.Seq))
	}
	return nil
}
