package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	kclient "github.com/auditpipe/auditpipe/lib/kafka"
	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
)

const topic = "audit"

// cluster starts a 3-broker kfake cluster with topic (partitions) on
// 127.0.0.1.
func cluster(t *testing.T, partitions int32, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(partitions, topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newSink(t *testing.T, c *kfake.Cluster, mod func(*Config)) *Sink {
	t.Helper()
	cfg := Config{Client: kclient.Options{Brokers: c.ListenAddrs()}, Topic: topic, Timeout: 20 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// records builds n record lines of chain (seq from..from+n-1); the hashes
// are made up (the sink does not verify), the line bytes are distinctive.
func records(chain string, from int64, n int) []sink.Record {
	rs := make([]sink.Record, n)
	for i := range rs {
		seq := from + int64(i)
		h := fmt.Sprintf("%064x", seq)
		prev := ""
		if seq > 1 {
			prev = fmt.Sprintf("%064x", seq-1)
		}
		line := fmt.Sprintf(`{"seq":%d,"ts":1764244800000,"tenantId":"acme","kind":"tool_call","record":{"k":"é\u2028 %s"},"prevHash":%q,"recordHash":%q}`, seq, chain, prev, h)
		rs[i] = sink.Record{Seq: seq, TS: 1764244800000, TenantID: "acme", Kind: "tool_call", Hash: h, PrevHash: prev, Line: []byte(line), Chain: chain}
	}
	return rs
}

// send sends rs until every record is delivered, resending the Pending
// ones after a retryable failure as the shipper does; it returns the
// retryable errors seen.
func send(t *testing.T, s *Sink, rs []sink.Record) []error {
	t.Helper()
	var seen []error
	pending := rs
	for try := 0; len(pending) > 0; try++ {
		if try > 20 {
			t.Fatalf("still %d records pending after 20 tries: %v", len(pending), seen)
		}
		res, err := s.Send(context.Background(), pending)
		var next []sink.Record
		for i, st := range res.Status {
			if st == sink.Pending {
				next = append(next, pending[i])
			}
		}
		if err != nil {
			var se *sink.Error
			if !errors.As(err, &se) || se.Class != sink.Retryable {
				t.Fatalf("Send: %v (want only retryable failures)", err)
			}
			seen = append(seen, err)
			if len(next) == 0 {
				t.Fatalf("a failed Send with no record pending: %v", err)
			}
		} else if len(next) > 0 {
			t.Fatalf("Send returned nil with %d records pending", len(next))
		}
		pending = next
	}
	return seen
}

type msg struct {
	partition int32
	offset    int64
	key       string
	value     []byte
	headers   map[string]string
}

// consume reads n messages of topic from the start (or fails after 15 s).
func consume(t *testing.T, c *kfake.Cluster, n int) []msg {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out []msg
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d messages in 15s", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, kv := range r.Headers {
				h[kv.Key] = string(kv.Value)
			}
			out = append(out, msg{partition: r.Partition, offset: r.Offset, key: string(r.Key), value: r.Value, headers: h})
		})
	}
	// Anything more is a duplicate: give it a moment to show.
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	fs := cl.PollFetches(short)
	fs.EachRecord(func(r *kgo.Record) {
		out = append(out, msg{partition: r.Partition, offset: r.Offset, key: string(r.Key), value: r.Value})
	})
	return out
}

// checkExactlyOnce checks that msgs hold every record of want exactly
// once, byte for byte, keyed and headed by its chain, and that each
// chain's records are in seq order within one partition.
func checkExactlyOnce(t *testing.T, msgs []msg, want []sink.Record) {
	t.Helper()
	byLine := map[string]*sink.Record{}
	for i := range want {
		byLine[string(want[i].Line)] = &want[i]
	}
	seen := map[string]int{}
	type pos struct {
		partition int32
		seq       int64
	}
	last := map[string]pos{}
	for _, m := range msgs {
		r, ok := byLine[string(m.value)]
		if !ok {
			t.Fatalf("message value not a record line sent (bytes changed?): %q", m.value)
		}
		seen[string(m.value)]++
		if m.key != r.Chain || m.headers[HeaderChain] != r.Chain || m.headers[HeaderSeq] != strconv.FormatInt(r.Seq, 10) ||
			m.headers[HeaderRecordHash] != r.Hash || m.headers[HeaderTenant] != r.TenantID {
			t.Fatalf("seq %d: key %q headers %v, want key and chain %q, seq, recordHash, tenant", r.Seq, m.key, m.headers, r.Chain)
		}
		if p, ok := last[r.Chain]; ok {
			if p.partition != m.partition {
				t.Fatalf("chain %s in partitions %d and %d", r.Chain, p.partition, m.partition)
			}
			if r.Seq <= p.seq {
				t.Fatalf("chain %s: seq %d after seq %d in partition %d", r.Chain, r.Seq, p.seq, m.partition)
			}
		}
		last[r.Chain] = pos{m.partition, r.Seq}
	}
	lost, dup := 0, 0
	for i := range want {
		switch n := seen[string(want[i].Line)]; {
		case n == 0:
			lost++
		case n > 1:
			dup += n - 1
		}
	}
	if lost > 0 || dup > 0 {
		t.Fatalf("%d records lost, %d duplicates (of %d)", lost, dup, len(want))
	}
}

func chainID(i int) string { return fmt.Sprintf("%064x", 0xc0ffee00+i) }

func TestDeliveryExactBytesKeyHeadersOrder(t *testing.T) {
	c := cluster(t, 6)
	s := newSink(t, c, nil)
	var all []sink.Record
	for ch := 0; ch < 3; ch++ {
		rs := records(chainID(ch), 1, 300)
		for b := 0; b < len(rs); b += 100 {
			if errs := send(t, s, rs[b:b+100]); len(errs) > 0 {
				t.Fatalf("retryable failures on a healthy cluster: %v", errs)
			}
		}
		all = append(all, rs...)
	}
	checkExactlyOnce(t, consume(t, c, len(all)), all)
}

func TestPerRecordResultsInOrder(t *testing.T) {
	c := cluster(t, 3)
	s := newSink(t, c, func(cfg *Config) { cfg.extra = []kgo.Opt{kgo.ProducerBatchMaxBytes(64 << 10)} })
	rs := records(chainID(0), 1, 5)
	big := append([]byte(nil), rs[2].Line[:len(rs[2].Line)-1]...)
	big = append(big, []byte(`,"pad":"`+strings.Repeat("x", 100<<10)+`"}`)...)
	rs[2].Line = big
	res, err := s.Send(context.Background(), rs)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := []sink.Status{sink.Delivered, sink.Delivered, sink.Poison, sink.Delivered, sink.Delivered}
	for i, st := range res.Status {
		if st != want[i] {
			t.Fatalf("status %v, want %v (reasons %q)", res.Status, want, res.Reason)
		}
	}
	if !sink.IsTooLarge(res.Reason[2]) || !strings.Contains(res.Reason[2], "max.message.bytes") {
		t.Fatalf("reason %q, want a too-large reason naming the limit", res.Reason[2])
	}
	checkExactlyOnce(t, consume(t, c, 4), append(append([]sink.Record{}, rs[:2]...), rs[3:]...))
}

// TestFaults produces 3 chains while the cluster misbehaves: every record
// arrives exactly once (idempotent producer), byte-exact, each chain in
// seq order in one partition.
func TestFaults(t *testing.T) {
	var handle *kfake.FaultHandle
	tests := []struct {
		name  string
		fault func(t *testing.T, c *kfake.Cluster)
		hits  bool // the fault is a kfake Fault that must have struck
	}{
		{"broker killed mid-send", func(t *testing.T, c *kfake.Cluster) {
			leader := c.LeaderFor(topic, 0)
			if err := c.RemoveNode(leader); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"partition leaders moved mid-send", func(t *testing.T, c *kfake.Cluster) {
			for p := int32(0); p < 3; p++ {
				to := (c.LeaderFor(topic, p) + 1) % 3
				if err := c.MoveTopicPartition(topic, p, to); err != nil {
					t.Fatal(err)
				}
			}
		}, false},
		{"produce responses lost after the write", func(t *testing.T, c *kfake.Cluster) {
			// REQUEST_TIMED_OUT on produce is answered after the broker
			// wrote the batch: the client resends it, the broker must
			// see the same producer sequence and not write it twice.
			handle = c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, Count: 3})
		}, true},
		{"not leader answers", func(t *testing.T, c *kfake.Cluster) {
			handle = c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotLeaderForPartition, Count: 3})
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster(t, 3)
			s := newSink(t, c, func(cfg *Config) { cfg.Timeout = 10 * time.Second })
			// Three chains send concurrently; the fault strikes while
			// batches are in flight (after chain 0's second batch, the
			// others mid-stream).
			var (
				all   []sink.Record
				wg    sync.WaitGroup
				fault sync.Once
			)
			chains := make([][]sink.Record, 3)
			for ch := range chains {
				chains[ch] = records(chainID(ch), 1, 600)
				all = append(all, chains[ch]...)
			}
			faulted := make(chan struct{})
			for ch, rs := range chains {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for b := 0; b < len(rs); b += 50 {
						send(t, s, rs[b:b+50])
						if ch == 0 && b == 50 {
							fault.Do(func() { go func() { tt.fault(t, c); close(faulted) }() })
						}
					}
				}()
			}
			wg.Wait()
			<-faulted
			if tt.hits && handle.Hits() != 3 {
				t.Fatalf("the fault struck %d times, want 3", handle.Hits())
			}
			checkExactlyOnce(t, consume(t, c, len(all)), all)
		})
	}
}

func TestConfigFailures(t *testing.T) {
	t.Run("unknown topic", func(t *testing.T) {
		c := cluster(t, 3)
		s := newSink(t, c, func(cfg *Config) { cfg.Topic = "no-such-topic"; cfg.Timeout = 10 * time.Second })
		_, err := s.Send(context.Background(), records(chainID(0), 1, 3))
		wantConfig(t, err, "UNKNOWN_TOPIC_OR_PARTITION", "audit-ship does not create topics")
		wantConfig(t, s.Check(context.Background()), "topic no-such-topic", "UNKNOWN_TOPIC_OR_PARTITION")
	})
	t.Run("SASL password refused", func(t *testing.T) {
		c := cluster(t, 3, kfake.EnableSASL(), kfake.Superuser("PLAIN", "shipper", "right"))
		// kfake closes the connection on a bad password; a Kafka broker
		// answers SASL_AUTHENTICATION_FAILED (58) first, as this control
		// does for a PLAIN exchange that carries the wrong password.
		c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			r := req.(*kmsg.SASLAuthenticateRequest)
			if !bytes.HasSuffix(r.SASLAuthBytes, []byte("\x00wrong")) {
				return nil, nil, false
			}
			resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
			resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
			resp.ErrorMessage = kmsg.StringPtr("Authentication failed: Invalid username or password")
			return resp, nil, true
		})
		pw := filepath.Join(t.TempDir(), "pw")
		os.WriteFile(pw, []byte("wrong\n"), 0o600)
		src, err := secret.NewSource(context.Background(), "file:"+pw)
		if err != nil {
			t.Fatal(err)
		}
		s := newSink(t, c, func(cfg *Config) {
			cfg.Client.SASL, cfg.Client.Username, cfg.Client.Password = kclient.SASLPlain, "shipper", src
			cfg.Timeout = 5 * time.Second
		})
		_, err = s.Send(context.Background(), records(chainID(0), 1, 3))
		wantConfig(t, err, "SASL_AUTHENTICATION_FAILED", "check --username and the --password reference")
		if strings.Contains(err.Error(), "wrong") {
			t.Fatalf("the error shows the password: %v", err)
		}
		wantConfig(t, s.Check(context.Background()), "SASL_AUTHENTICATION_FAILED")
		// The password file rotated: a later connection reads it (the
		// shipper resends after its backoff).
		os.WriteFile(pw, []byte("right\n"), 0o600)
		// A connection attempt begun before the rotation (or the client's
		// backoff after the refusals) may still fail one Send with the old
		// password: audit-ship resends a Config failure after its backoff
		// too (--pause-after), so only eventual delivery is asserted.
		rs := records(chainID(0), 1, 3)
		var errs []error
		for try := 0; ; try++ {
			res, err := s.Send(context.Background(), rs)
			if err == nil {
				break
			}
			var se *sink.Error
			if !errors.As(err, &se) || (se.Class != sink.Retryable && !strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED")) || try > 10 {
				t.Fatalf("after the rotation, try %d: %v (statuses %v)", try, err, res.Status)
			}
			errs = append(errs, err)
			var next []sink.Record
			for i, st := range res.Status {
				if st == sink.Pending {
					next = append(next, rs[i])
				}
			}
			rs = next
			if len(rs) == 0 {
				break
			}
		}
		t.Logf("after the rotation: %d failures before delivery: %v", len(errs), errs)
	})
	t.Run("topic not authorized", func(t *testing.T) {
		c := cluster(t, 3, kfake.EnableSASL(), kfake.Superuser("PLAIN", "admin", "admin"), kfake.EnableACLs(),
			kfake.User("SCRAM-SHA-512", "shipper", "pw"))
		pw := filepath.Join(t.TempDir(), "pw")
		os.WriteFile(pw, []byte("pw"), 0o600)
		src, _ := secret.NewSource(context.Background(), "file:"+pw)
		s := newSink(t, c, func(cfg *Config) {
			cfg.Client.SASL, cfg.Client.Username, cfg.Client.Password = kclient.SASLScramSHA512, "shipper", src
			cfg.Timeout = 5 * time.Second
		})
		_, err := s.Send(context.Background(), records(chainID(0), 1, 3))
		wantConfig(t, err, "AUTHORIZATION_FAILED")
	})
	t.Run("no chain", func(t *testing.T) {
		c := cluster(t, 1)
		s := newSink(t, c, nil)
		rs := records("", 5, 2)
		_, err := s.Send(context.Background(), rs)
		wantConfig(t, err, "record seq 5 names no chain", "--chain-id")
	})
}

func wantConfig(t *testing.T, err error, want ...string) {
	t.Helper()
	var se *sink.Error
	if !errors.As(err, &se) || se.Class != sink.Config {
		t.Fatalf("error %v, want a sink.Config failure", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q lacks %q", err, w)
		}
	}
}

func TestChainSources(t *testing.T) {
	c := cluster(t, 3)
	configured := ""
	s := newSink(t, c, func(cfg *Config) { cfg.Chain = func() string { return configured } })
	// A genesis record names its chain by its own recordHash, and the
	// records after it (in later batches) keep it.
	rs := records("", 1, 4)
	send(t, s, rs[:1])
	send(t, s, rs[1:])
	msgs := consume(t, c, 4)
	for _, m := range msgs {
		if m.key != rs[0].Hash {
			t.Fatalf("key %q, want the genesis recordHash %s", m.key, rs[0].Hash)
		}
	}
	// A configured chain (--chain-id, the marks) wins over the genesis
	// rule; a record's own Chain wins over both.
	configured = "host-17"
	if got := s.chainOf(&sink.Record{Seq: 1, Hash: rs[0].Hash}); got != "host-17" {
		t.Fatalf("chain %q, want the configured one", got)
	}
	if got := s.chainOf(&sink.Record{Seq: 9, Chain: "own"}); got != "own" {
		t.Fatalf("chain %q, want the record's own", got)
	}
}

func TestCheck(t *testing.T) {
	c := cluster(t, 3)
	s := newSink(t, c, nil)
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	addrs := c.ListenAddrs()
	c.Close()
	s2, err := New(Config{Client: kclient.Options{Brokers: addrs}, Topic: topic, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	err = s2.Check(context.Background())
	var se *sink.Error
	if !errors.As(err, &se) || se.Class != sink.Retryable || se.HTTPStatus != 0 {
		t.Fatalf("Check against a stopped cluster = %v, want a retryable network failure", err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, cfg := range []Config{
		{Client: kclient.Options{Brokers: []string{"127.0.0.1:9092"}}, Compression: "brotli"},
		{Client: kclient.Options{}},
	} {
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
