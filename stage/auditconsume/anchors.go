package auditconsume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/lib/chain"
)

// The anchor store (issue 15): the last seq and recordHash delivered for
// each chain, per consumer group, in a compacted Kafka topic (one record
// per group and chain: key "<group>/<chain>", value
// {"group":...,"chain":...,"seq":N,"hash":"<64 hex>","at":<ms>}).
//
// Why a Kafka topic: the consumers of a group move between hosts (a
// Kubernetes Deployment's pods have no disk that follows them; a
// rebalance hands a partition, and so its chains, to another consumer),
// and the anchors must follow the chains wherever they go, with the same
// durability as the records (acks from every in-sync replica). Why not the
// offset commit's metadata: that is per partition and capped (4 KiB by
// default, offset.metadata.max.bytes), while a partition carries many
// chains. Compaction keeps one record per group and chain, so the topic
// stays as small as the fleet.
//
// Order: anchors are stored (and acked by Kafka) BEFORE the offsets that
// cover their records are committed. A crash between the two leaves the
// anchors ahead of the offsets: the records re-read are at or below their
// chain's anchor and are skipped as delivered, and each chain resumes at
// its anchor. Never the other way round: an offset committed past a record
// whose chain has no anchor for it would make the chain resume unanchored.

type anchorValue struct {
	Group string `json:"group"`
	Chain string `json:"chain"`
	Seq   int64  `json:"seq"`
	Hash  string `json:"hash"`
	At    int64  `json:"at"`
}

type anchorStore struct {
	topic, group string
	opts         []kgo.Opt // to make a reader
}

// ensure creates the anchors topic (compacted, one partition) when it does
// not exist yet.
func (s *anchorStore) ensure(ctx context.Context, cl *kgo.Client) error {
	adm := kadm.NewClient(cl)
	compact := "compact"
	_, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, s.topic)
	if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	// Not allowed to create topics: fine if it exists already (made by
	// the operator, compacted).
	if ends, lerr := adm.ListEndOffsets(ctx, s.topic); lerr == nil && ends.Error() == nil && len(ends[s.topic]) > 0 {
		return nil
	}
	var ke *kerr.Error
	if errors.As(err, &ke) { // the broker answered: refused
		return fmt.Errorf("anchors topic %s: %w (create it: one partition, cleanup.policy=compact)", s.topic, err)
	}
	return fmt.Errorf("anchors topic %s: %w (are --brokers right and reachable?)", s.topic, err)
}

// load reads the anchors of the group: the last one written for each chain.
func (s *anchorStore) load(ctx context.Context, cl *kgo.Client) (map[string]chain.Anchor, error) {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, s.topic)
	if err != nil {
		return nil, fmt.Errorf("anchors topic %s: %w", s.topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("anchors topic %s: %w", s.topic, err)
	}
	want := map[int32]int64{}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			parts[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	out := map[string]chain.Anchor{}
	if len(want) == 0 {
		return out, nil
	}
	r, err := kgo.NewClient(append(append([]kgo.Opt(nil), s.opts...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: parts}))...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	prefix := s.group + "/"
	for len(want) > 0 {
		fs := r.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("anchors topic %s: read: %w", s.topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, fmt.Errorf("anchors topic %s: read: %w", s.topic, ferr)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Offset+1 >= want[rec.Partition] {
				delete(want, rec.Partition)
			}
			if !strings.HasPrefix(string(rec.Key), prefix) || rec.Value == nil {
				return
			}
			var v anchorValue
			if json.Unmarshal(rec.Value, &v) != nil || v.Group != s.group || chain.ValidChainID(v.Chain) != nil || v.Seq < 0 {
				return
			}
			out[v.Chain] = chain.Anchor{Seq: v.Seq, Hash: v.Hash}
		})
	}
	return out, nil
}

// store writes anchors and waits until Kafka acked every one.
func (s *anchorStore) store(ctx context.Context, cl *kgo.Client, as map[string]chain.Anchor) error {
	if len(as) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, 0, len(as))
	now := time.Now().UnixMilli()
	for id, a := range as {
		b, _ := json.Marshal(anchorValue{Group: s.group, Chain: id, Seq: a.Seq, Hash: a.Hash, At: now})
		recs = append(recs, &kgo.Record{Topic: s.topic, Key: []byte(s.group + "/" + id), Value: b})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("store anchors in %s: %w", s.topic, err)
	}
	return nil
}
