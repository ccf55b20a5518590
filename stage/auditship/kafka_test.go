package auditship

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// kafkaCluster starts a 3-broker kfake cluster with topic "audit".
func kafkaCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "audit"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

type kmsg struct {
	key, value string
	headers    map[string]string
}

func consumeAll(t *testing.T, c *kfake.Cluster, n int) []kmsg {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("audit"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out []kmsg
	for len(out) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, kv := range r.Headers {
				h[kv.Key] = string(kv.Value)
			}
			out = append(out, kmsg{key: string(r.Key), value: string(r.Value), headers: h})
		})
	}
	if len(out) != n {
		t.Fatalf("consumed %d messages, want %d", len(out), n)
	}
	return out
}

// TestKafkaChainFromMarks: audit-ship --kind kafka keys every record by
// the chain the input's leading anchor mark names (audit-read's), or by
// --chain-id, or by a genesis record's own hash; the acks cover every
// record; the values are the record lines byte for byte.
func TestKafkaChainFromMarks(t *testing.T) {
	lines := makeChain(t, 120, 1764244800123, "acme", "globex")
	anchorChain := strings.Repeat("ab", 32)
	anchor := string(chain.AppendMark(nil, &chain.Mark{Type: chain.MarkAnchor, Source: chain.SourceCursor, Exporter: "kafka:fleet", Chain: anchorChain}))
	chainMark := `{"mark":{"type":"chain","chain":"host-9"}}`
	tests := []struct {
		name  string
		in    string
		args  []string
		chain string
	}{
		{"anchor mark", anchor + "\n" + string(ndjsonOf(lines)), nil, anchorChain},
		{"chain mark", chainMark + "\n" + string(ndjsonOf(lines)), nil, "host-9"},
		{"--chain-id wins", anchor + "\n" + string(ndjsonOf(lines)), []string{"--chain-id", "host-17.prod"}, "host-17.prod"},
		{"genesis record", string(ndjsonOf(lines)), nil, lines[0].hash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := kafkaCluster(t)
			stdout, stderr, err := runShip(t, []byte(tt.in), append([]string{"--kind", "kafka", "--brokers", strings.Join(c.ListenAddrs(), ","),
				"--topic", "audit", "--exporter", "kafka:fleet", "--acks", "-", "--batch-size", "50"}, tt.args...)...)
			if err != nil {
				t.Fatalf("audit-ship: %v\n%s", err, stderr)
			}
			checkAcks(t, acksOf(t, stdout), lines, "kafka:fleet")
			msgs := consumeAll(t, c, len(lines))
			var values []string
			for i, m := range msgs {
				if m.key != tt.chain || m.headers["chain"] != tt.chain || m.headers["seq"] != lines[i].text[7:7+len(m.headers["seq"])] {
					t.Fatalf("message %d: key %q headers %v, want chain %q", i, m.key, m.headers, tt.chain)
				}
				if m.value != lines[i].text {
					t.Fatalf("message %d is not the record line byte for byte:\n%s\n%s", i, m.value, lines[i].text)
				}
				values = append(values, m.value)
			}
			reverify(t, values)
		})
	}
}

func TestKafkaMistakes(t *testing.T) {
	c := kafkaCluster(t)
	brokers := strings.Join(c.ListenAddrs(), ",")
	lines := makeChain(t, 20, 1764244800123)
	mid := ndjsonOf(lines[5:]) // no mark, not from genesis: no chain
	tests := []struct {
		name string
		in   []byte
		args []string
		code int
		want string
	}{
		{"no brokers", mid, []string{"--kind", "kafka"}, exitcode.Usage, "--kind kafka needs --brokers"},
		{"bad broker", mid, []string{"--kind", "kafka", "--brokers", "kafka"}, exitcode.Usage, `--brokers: broker "kafka": want host:port`},
		{"bad topic", mid, []string{"--kind", "kafka", "--brokers", brokers, "--topic", "_x"}, exitcode.Usage, "a Kafka topic name must start with a letter or a digit"},
		{"bad compression", mid, []string{"--kind", "kafka", "--brokers", brokers, "--compression", "brotli"}, exitcode.Usage, "--compression: want none, gzip"},
		{"bad chain id", mid, []string{"--kind", "kafka", "--brokers", brokers, "--chain-id", "a/b"}, exitcode.Usage, `--chain-id: "a/b"`},
		{"plain SASL in clear", mid, []string{"--kind", "kafka", "--brokers", "kafka.example:9092", "--sasl", "plain", "--username", "u", "--password", "env:HOME"}, exitcode.Usage, "sends the password in clear"},
		{"kafka flag with splunk", mid, []string{"--kind", "splunk", "--brokers", brokers}, exitcode.Usage, "--brokers applies to --kind kafka"},
		{"no chain", mid, []string{"--kind", "kafka", "--brokers", brokers, "--topic", "audit", "--pause-after", "1", "--min-backoff", "1ms"}, exitcode.Config, "record seq 6 names no chain"},
		{"check: unknown topic", nil, []string{"--kind", "kafka", "--brokers", brokers, "--topic", "nope", "--check"}, exitcode.Config, "UNKNOWN_TOPIC_OR_PARTITION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := runShip(t, tt.in, append(tt.args, "--acks", "-")...)
			if exitcode.Of(err) != tt.code || !strings.Contains(err.Error()+stderr, tt.want) {
				t.Fatalf("err %v (exit %d), want exit %d with %q\n%s", err, exitcode.Of(err), tt.code, tt.want, stderr)
			}
		})
	}
	// --check against the cluster and the topic: fine.
	if _, stderr, err := runShip(t, nil, "--kind", "kafka", "--brokers", brokers, "--topic", "audit", "--check"); err != nil {
		t.Fatalf("--check: %v\n%s", err, stderr)
	}
}

func TestKafkaDryRun(t *testing.T) {
	lines := makeChain(t, 3, 1764244800123)
	stdout, stderr, err := runShip(t, ndjsonOf(lines), "--kind", "kafka", "--brokers", "127.0.0.1:1", "--topic", "audit-${tenant:id}", "--dry-run")
	if err != nil {
		t.Fatalf("--dry-run: %v\n%s", err, stderr)
	}
	for _, want := range []string{"produce to 127.0.0.1:1 (TLS false, SASL none), idempotent, acks=all, compression lz4",
		"topic audit-acme key " + lines[0].hash + " headers seq=1 recordHash=" + lines[0].hash + " tenant=acme chain=" + lines[0].hash,
		lines[2].text} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("--dry-run output lacks %q:\n%s", want, stdout)
		}
	}
}
