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

// SplitCheckpoints is Send for a sink that ships its checkpoint lines by
// another request than its records (Splunk's raw endpoint takes record
// lines only: the checkpoints go to /event, under their own sourcetype,
// where audit-fetch finds them). The records go first; if they fail, the
// checkpoints stay Pending and are sent again with them.
func SplitCheckpoints(ctx context.Context, records []Record, sendRecords, sendCheckpoints func(context.Context, []Record) (Result, error)) (Result, error) {
	res := NewResult(len(records))
	var recs, cps []Record
	var recAt, cpAt []int
	for i := range records {
		if records[i].Checkpoint != nil {
			cps, cpAt = append(cps, records[i]), append(cpAt, i)
		} else {
			recs, recAt = append(recs, records[i]), append(recAt, i)
		}
	}
	mapBack := func(sub Result, at []int) {
		for k, i := range at {
			if k < len(sub.Status) {
				res.Status[i], res.Reason[i] = sub.Status[k], sub.Reason[k]
			}
		}
	}
	if len(recs) > 0 {
		sub, err := sendRecords(ctx, recs)
		mapBack(sub, recAt)
		if err != nil {
			return res, err
		}
	}
	if len(cps) > 0 {
		sub, err := sendCheckpoints(ctx, cps)
		mapBack(sub, cpAt)
		return res, err
	}
	return res, nil
}
