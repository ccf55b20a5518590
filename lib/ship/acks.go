package ship

import "github.com/auditpipe/auditpipe/lib/ack"

// ErrAcksNotHandedOver is ack.ErrNotHandedOver: acks of delivered records
// not handed to audit-ack before the writer's deadline (exit code 8).
var ErrAcksNotHandedOver = ack.ErrNotHandedOver

// countsHandover is an AckSink that counts in Metrics what it hands over
// (AckedRecords, LastAckedSeq) and what it holds (AcksHeld): lib/ack's
// writers (ack.StreamWriter, ack.FIFOWriter).
type countsHandover interface {
	Count(ack.Counters)
}

func countersOf(m *Metrics) ack.Counters {
	return ack.Counters{Records: &m.AckedRecords, LastSeq: &m.LastAckedSeq, Held: &m.AcksHeld}
}
