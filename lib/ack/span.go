package ack

// Span is what one ack (or a run of contiguous acks merged by Spans) says
// was delivered: Count records, the first at FirstSeq, the last at LastSeq
// with LastHash; Since and SinceCount are the ack's run claim (SinceCount 0:
// none). It is what the reader commits (lib/auditdb CommitAcks).
type Span struct {
	FirstSeq, LastSeq int64
	LastHash          string
	Count             int64
	Since, SinceCount int64
}

// SpanOf is the span a says was delivered.
func SpanOf(a Ack) Span {
	return Span{FirstSeq: a.FirstSeq, LastSeq: a.LastSeq, LastHash: a.LastHash, Count: int64(a.Count),
		Since: a.Since, SinceCount: a.SinceCount}
}

// Clean reports whether the span accounts for every seq from FirstSeq to
// LastSeq (Count covers them all: nothing inside it was left out).
func (a Span) Clean() bool { return a.Count >= a.LastSeq-a.FirstSeq+1 }

// Spans are the acks a reader has taken and not yet committed, in order.
// A clean ack that follows on from the cursor through clean acks is merged
// into one span (its commit needs no query); any other is kept as it came,
// so that a refusal names it.
type Spans struct {
	List      []Span
	tailClean bool // every span of List is clean and follows on from the cursor
}

// Add appends s, taken with the cursor at committed. It returns false (and
// keeps nothing) for a replay of what is committed or already taken.
func (p *Spans) Add(committed int64, s Span) bool {
	known := committed
	n := len(p.List)
	if n > 0 {
		known = p.List[n-1].LastSeq
	}
	if s.LastSeq <= known {
		return false
	}
	follows := s.Clean() && s.FirstSeq <= known+1
	if n > 0 && follows && p.tailClean {
		prev := &p.List[n-1]
		prev.LastSeq, prev.LastHash = s.LastSeq, s.LastHash
		prev.Count = prev.LastSeq - prev.FirstSeq + 1
		// A merged span follows on: it needs no "since" (and the ack's
		// would not describe the merged range).
		prev.Since, prev.SinceCount = 0, 0
		return true
	}
	p.List = append(p.List, s)
	p.tailClean = follows && (n == 0 || p.tailClean)
	return true
}

// Reset drops every span (committed, or refused).
func (p *Spans) Reset() { p.List, p.tailClean = p.List[:0], false }

// Gap is an ack that skips rows the exporter ships (the gap rule of the
// package doc): Missing rows of the selection, the first at MissFirst and
// the last at MissLast, either before the ack's FirstSeq (after the
// cursor), or, Inside, within its range beyond its Count; SinceShort: the
// ack's run claim does not hold (Missing more rows in [Since, LastSeq]
// than its SinceCount).
type Gap struct {
	Missing, MissFirst, MissLast int64
	Inside, SinceShort           bool
}

// CountFunc counts the rows of the exporter's selection with lo < seq < hi,
// and gives the first and last of them (the reader's database query).
type CountFunc func(lo, hi int64) (n, first, last int64, err error)

// Check applies the gap rule to s, taken with known the cursor (or the
// last span taken before it): nil when s skips nothing the exporter ships.
// A clean span that follows on from known makes no call to count.
func Check(known int64, s Span, count CountFunc) (*Gap, error) {
	if s.FirstSeq > known+1 {
		n, first, last, err := count(known, s.FirstSeq)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			if s.SinceCount == 0 {
				return &Gap{Missing: n, MissFirst: first, MissLast: last}, nil
			}
			// The shipper says its run delivered them: check the claim.
			if s.Since > known+1 {
				n, first, last, err := count(known, s.Since)
				if err != nil {
					return nil, err
				}
				if n > 0 {
					return &Gap{Missing: n, MissFirst: first, MissLast: last}, nil
				}
			}
			n, first, last, err := count(s.Since-1, s.LastSeq+1)
			if err != nil {
				return nil, err
			}
			if n > s.SinceCount {
				return &Gap{Missing: n - s.SinceCount, MissFirst: first, MissLast: last, SinceShort: true}, nil
			}
		}
	}
	if !s.Clean() {
		n, first, last, err := count(max(s.FirstSeq-1, known), s.LastSeq+1)
		if err != nil {
			return nil, err
		}
		if n > s.Count {
			return &Gap{Missing: n - s.Count, MissFirst: first, MissLast: last, Inside: true}, nil
		}
	}
	return nil, nil
}
