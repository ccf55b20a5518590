// Package kafka is the Kafka sink (audit-ship --kind kafka): each record
// becomes one Kafka message whose value is the exact record line, whose
// key is the record's chain id (docs/contract.md section 5: one chain keeps
// its order in one partition), with the headers seq, recordHash, tenant and
// chain. The producer is idempotent with acks from all in-sync replicas, so
// the client's own retries (a broker gone, a partition leader moved, a
// response lost) never write a record twice within a producer session.
// Send returns only when Kafka acked or failed every record of the batch;
// the shipper acks the batch when every record is Delivered.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	kclient "github.com/auditpipe/auditpipe/lib/kafka"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// Compression codecs, as --compression spells them.
var Compressions = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// Defaults.
const (
	DefaultTopic       = "declaragent-audit"
	DefaultCompression = "lz4"
	DefaultTimeout     = 30 * time.Second
)

// Header names of every message.
const (
	HeaderSeq        = "seq"
	HeaderRecordHash = "recordHash"
	HeaderTenant     = "tenant"
	HeaderChain      = "chain"
)

// Config configures the sink.
type Config struct {
	Client kclient.Options

	// Topic is the topic of every record, unless TopicFor is set
	// (a lib/route template with KafkaTopic rules: ${tenant:id}, ...).
	Topic    string
	TopicFor func(*sink.Record) string

	Compression string        // one of Compressions; default DefaultCompression
	Timeout     time.Duration // how long a record may take to be acked before Send fails it (retryable); default DefaultTimeout

	// Chain gives the chain id of a record whose Chain is empty (audit-ship:
	// --chain-id, or the chain the input's leading marks named). nil or ""
	// leaves the genesis rule: a record at seq 1 with an empty prevHash
	// names its chain by its own recordHash, and the sink keeps that id.
	Chain func() string

	// Linger is how long the client waits to fill a batch (franz-go's
	// default when 0).
	Linger time.Duration

	// extra client options (tests)
	extra []kgo.Opt
}

// Sink is the Kafka sink.
type Sink struct {
	cfg     Config
	cl      *kgo.Client
	topic   string
	learned atomic.Pointer[string] // the chain a genesis record named
}

// New checks cfg and creates the client (it connects lazily).
func New(cfg Config) (*Sink, error) {
	if cfg.Topic == "" && cfg.TopicFor == nil {
		cfg.Topic = DefaultTopic
	}
	if cfg.Compression == "" {
		cfg.Compression = DefaultCompression
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	codec, err := codecFor(cfg.Compression)
	if err != nil {
		return nil, err
	}
	opts, err := cfg.Client.ClientOpts()
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	opts = append(opts,
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence needs it, and so do we
		kgo.ProducerBatchCompression(codec),
		kgo.RecordDeliveryTimeout(cfg.Timeout),
		kgo.ProduceRequestTimeout(min(cfg.Timeout, 10*time.Second)),
		kgo.UnknownTopicRetries(2),
	)
	if cfg.Linger > 0 {
		opts = append(opts, kgo.ProducerLinger(cfg.Linger))
	}
	opts = append(opts, cfg.extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return &Sink{cfg: cfg, cl: cl, topic: cfg.Topic}, nil
}

func codecFor(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("kafka: compression %q: want %s", name, strings.Join(Compressions, ", "))
}

// chainOf returns the chain id of r, "" if none is known.
func (s *Sink) chainOf(r *sink.Record) string {
	if r.Chain != "" {
		return r.Chain
	}
	if s.cfg.Chain != nil {
		if c := s.cfg.Chain(); c != "" {
			return c
		}
	}
	if r.Seq == 1 && r.PrevHash == "" && r.Hash != "" {
		h := strings.Clone(r.Hash) // kept for later batches: r's strings are its batch's memory, reused after its ack
		s.learned.Store(&h)
		return h
	}
	if p := s.learned.Load(); p != nil {
		return *p
	}
	return ""
}

// Send produces every record and waits until Kafka acked or failed each.
func (s *Sink) Send(ctx context.Context, records []sink.Record) (sink.Result, error) {
	if sink.HasCheckpoints(records) {
		return sink.RefuseCheckpoints(ctx, records, checkpointRefused, s.Send)
	}
	res := sink.NewResult(len(records))
	if len(records) == 0 {
		return res, nil
	}
	// The client may hold a record past Send's return (a stop while a
	// request is out): it gets copies, never the caller's memory.
	size := 0
	for i := range records {
		size += len(records[i].Line)
	}
	arena := make([]byte, 0, size)
	krs := make([]kgo.Record, len(records))
	for i := range records {
		r := &records[i]
		chain := s.chainOf(r)
		if chain == "" {
			return res, &sink.Error{Class: sink.Config, Code: -1, Msg: fmt.Sprintf(
				"record seq %d names no chain: Kafka keys every record by its chain id; give audit-ship --chain-id, or let the anchor mark of audit-read reach audit-ship (docs/fleet.md)", r.Seq)}
		}
		topic := s.topic
		if s.cfg.TopicFor != nil {
			topic = s.cfg.TopicFor(r)
		}
		start := len(arena)
		arena = append(arena, r.Line...)
		krs[i] = kgo.Record{
			Topic: topic,
			Key:   []byte(chain),
			Value: arena[start:len(arena):len(arena)],
			Headers: []kgo.RecordHeader{
				{Key: HeaderSeq, Value: strconv.AppendInt(nil, r.Seq, 10)},
				{Key: HeaderRecordHash, Value: []byte(r.Hash)},
				{Key: HeaderTenant, Value: []byte(r.TenantID)},
				{Key: HeaderChain, Value: []byte(chain)},
			},
		}
	}
	errs := make([]error, len(records))
	var wg sync.WaitGroup
	wg.Add(len(records))
	for i := range krs {
		s.cl.Produce(ctx, &krs[i], func(_ *kgo.Record, err error) {
			errs[i] = err
			wg.Done()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// Stopping: what Kafka acks from here on is not acked by us, and
		// is sent again from the cursor on the next run (a duplicate).
		return res, ctx.Err()
	}
	var first error
	firstSeq := int64(0)
	for i, err := range errs {
		switch {
		case err == nil:
			res.Status[i] = sink.Delivered
		case errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge):
			res.Status[i] = sink.Poison
			res.Reason[i] = sink.TooLargeReason(fmt.Sprintf("%d bytes: %v (the topic's max.message.bytes, or the producer's batch limit)", len(records[i].Line), err))
		case errors.Is(err, kerr.InvalidRecord) || errors.Is(err, kerr.CorruptMessage):
			res.Status[i] = sink.Poison
			res.Reason[i] = err.Error()
		default:
			if first == nil {
				first, firstSeq = err, records[i].Seq
			}
		}
	}
	if first == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, classify(first, fmt.Sprintf("record seq %d: ", firstSeq))
}

// configErrors are the broker answers that resending cannot cure: the
// configuration (topic, credentials, ACLs) must change.
var configErrors = []error{
	kerr.UnknownTopicOrPartition, kerr.TopicAuthorizationFailed, kerr.ClusterAuthorizationFailed,
	kerr.TransactionalIDAuthorizationFailed, kerr.SaslAuthenticationFailed, kerr.UnsupportedSaslMechanism,
	kerr.IllegalSaslState, kerr.InvalidTopicException, kerr.InvalidRequiredAcks, kerr.PolicyViolation,
	kerr.UnsupportedCompressionType, kerr.UnsupportedVersion,
}

// classify maps a produce or request error to a sink.Error.
func classify(err error, prefix string) *sink.Error {
	se := &sink.Error{Class: sink.Retryable, Code: -1, Msg: prefix + err.Error()}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		se.Code = int(ke.Code)
	}
	for _, c := range configErrors {
		if errors.Is(err, c) {
			se.Class = sink.Config
			se.Msg += configHint(c)
			return se
		}
	}
	return se
}

func configHint(c error) string {
	switch c {
	case kerr.UnknownTopicOrPartition:
		return " (create the topic, or check --topic: audit-ship does not create topics)"
	case kerr.TopicAuthorizationFailed:
		return " (the principal needs WRITE and DESCRIBE on the topic)"
	case kerr.ClusterAuthorizationFailed:
		return " (the principal needs IDEMPOTENT_WRITE on the cluster for the idempotent producer)"
	case kerr.SaslAuthenticationFailed:
		return " (check --username and the --password reference)"
	}
	return ""
}

// Check asks the cluster for the topic's metadata (connect, TLS, SASL; a
// static topic must exist and be described to us).
func (s *Sink) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	static := s.cfg.TopicFor == nil
	if static {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(s.topic)
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return err
		}
		return classify(err, "metadata: ")
	}
	if len(resp.Brokers) == 0 {
		return &sink.Error{Class: sink.Retryable, Code: -1, Msg: "metadata: the cluster named no broker"}
	}
	if static {
		for _, t := range resp.Topics {
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
				return classify(err, fmt.Sprintf("topic %s: ", s.topic))
			}
		}
	}
	return nil
}

// Close closes the client.
func (s *Sink) Close() error {
	s.cl.Close()
	return nil
}

// checkpointRefused is the Reason of a checkpoint line (seal
// --emit-checkpoints) given to the Kafka sink: a record topic carries
// records only; the central side's seal makes its own checkpoints.
const checkpointRefused = "a checkpoint line, not a record: the kafka sink carries records only; run audit-checkpoint seal without --emit-checkpoints before a kafka audit-ship"
