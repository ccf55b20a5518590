package sink

import "context"

// HasCheckpoints reports whether records hold a checkpoint line
// (Record.Checkpoint set).
func HasCheckpoints(records []Record) bool {
	for i := range records {
		if records[i].Checkpoint != nil {
			return true
		}
	}
	return false
}

// RefuseCheckpoints is Send for a sink that carries records only (file,
// kafka): the checkpoint lines are Poison with reason (quarantined, or the
// shipper pauses, never dropped in silence), the records are sent with
// send, their statuses mapped back.
func RefuseCheckpoints(ctx context.Context, records []Record, reason string, send func(context.Context, []Record) (Result, error)) (Result, error) {
	res := NewResult(len(records))
	var recs []Record
	var at []int
	for i := range records {
		if records[i].Checkpoint != nil {
			res.Status[i], res.Reason[i] = Poison, reason
			continue
		}
		recs = append(recs, records[i])
		at = append(at, i)
	}
	if len(recs) == 0 {
		return res, nil
	}
	sub, err := send(ctx, recs)
	for k, i := range at {
		if k < len(sub.Status) {
			res.Status[i], res.Reason[i] = sub.Status[k], sub.Reason[k]
		}
	}
	return res, err
}
