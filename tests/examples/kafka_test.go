package examples

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaProducerScript runs examples/pipelines/kafka-producer.sh as the
// auditpipe-kafka@ unit would (its Environment lines, kafka.env.example's
// keys pointed at a 3-broker internal/tools/kfake cluster): every record of
// the database reaches the topic, byte for byte, keyed by the chain id (the
// recordHash of seq 1), the cursor reaches the head, and SIGTERM stops the
// unit's processes with exit 0.
// startKfake builds internal/tools/kfake, starts a 3-broker cluster with
// the topic (6 partitions) and returns its bootstrap addresses.
func startKfake(t *testing.T, dir, topic string) string {
	t.Helper()
	kfake := filepath.Join(dir, "kfake")
	if out, err := exec.Command("go", "build", "-o", kfake, filepath.Join(root, "internal/tools/kfake")).CombinedOutput(); err != nil {
		t.Fatalf("go build kfake: %v\n%s", err, out)
	}
	kc := exec.Command(kfake, "--topic", topic+":6")
	kout, _ := kc.StdoutPipe()
	if err := kc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kc.Process.Signal(syscall.SIGTERM); kc.Wait() })
	line, err := bufio.NewReader(kout).ReadString('\n')
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	return strings.TrimSpace(line)
}

// kafkaEnv is kafka.env.example's environment pointed at db and brokers
// (no TLS, no SASL, no metrics).
func kafkaEnv(t *testing.T, db, brokers string) map[string]string {
	t.Helper()
	env := map[string]string{}
	b, err := os.ReadFile(filepath.Join(share, "kafka.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			env[k] = v
		}
	}
	for _, k := range []string{"DB", "KAFKA_BROKERS", "KAFKA_TOPIC", "EXPORTER", "METRICS_PORT"} {
		if env[k] == "" {
			t.Fatalf("kafka.env.example sets no %s", k)
		}
	}
	delete(env, "KAFKA_TLS")
	delete(env, "KAFKA_SASL")
	env["DB"], env["KAFKA_BROKERS"], env["METRICS_PORT"] = db, brokers, "off"
	return env
}

// startProducer runs the auditpipe-kafka@ unit's ExecStart with its
// Environment lines and env (EnvironmentFile= wins over Environment=, as
// in systemd), in its own process group.
func startProducer(t *testing.T, dir string, env map[string]string) (*exec.Cmd, *bytes.Buffer, chan error) {
	t.Helper()
	run := filepath.Join(dir, "run")
	os.MkdirAll(run, 0o700)
	e := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	var prog string
	for _, kv := range unitLines(t, filepath.Join(prefix, "lib/systemd/system", "auditpipe-kafka@.service")) {
		switch kv[0] {
		case "Environment":
			for _, a := range strings.Fields(kv[1]) {
				e = append(e, strings.ReplaceAll(a, "/run/auditpipe", run))
			}
		case "ExecStart":
			prog = kv[1]
		}
	}
	for k, v := range env {
		e = append(e, k+"="+v)
	}
	c := exec.Command(prog)
	c.Env, c.Dir = e, dir
	var stderr bytes.Buffer
	c.Stderr = &stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	t.Cleanup(func() { syscall.Kill(-c.Process.Pid, syscall.SIGKILL) })
	return c, &stderr, done
}

// consumeTopic reads at least n messages of topic from the start (15 s at
// most), then whatever more there is.
func consumeTopic(t *testing.T, brokers, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	// Then the rest (duplicates): until a second passes with nothing new.
	for {
		more, cancel2 := context.WithTimeout(context.Background(), time.Second)
		before := len(got)
		cl.PollFetches(more).EachRecord(func(r *kgo.Record) { got = append(got, r) })
		cancel2()
		if len(got) == before {
			return got
		}
	}
}

func TestKafkaProducerScript(t *testing.T) {
	dir := t.TempDir()
	brokers := startKfake(t, dir, "declaragent-audit")
	db := genDB(t, dir, "audit.db", 500)
	want := strings.Split(strings.TrimSpace(sh(t, dir, "audit-read --db audit.db --quiet")), "\n")
	chain := strings.TrimSpace(sh(t, dir, `sqlite3 audit.db "select record_hash from audit_records where seq = 1"`))
	env := kafkaEnv(t, db, brokers)
	c, stderr, done := startProducer(t, dir, env)
	waitFor(t, "cursor "+env["EXPORTER"]+" at 500", 30*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("kafka-producer.sh ended: %v\n%s", err, stderr.String())
		default:
		}
		return cursor(t, db, env["EXPORTER"]) == 500
	})

	var got []string
	for _, r := range consumeTopic(t, brokers, env["KAFKA_TOPIC"], len(want)) {
		if string(r.Key) != chain {
			t.Errorf("message key %q, want the chain id %s", r.Key, chain)
		}
		got = append(got, string(r.Value))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the topic holds %d messages, not the database's %d record lines in order", len(got), len(want))
	}

	syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("kafka-producer.sh after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("kafka-producer.sh did not stop on SIGTERM\n%s", stderr.String())
	}
}

// TestKafkaProducerKill9 kills the producer unit's processes with SIGKILL
// mid-stream and starts it again: the rerun resumes from the cursor, every
// record reaches the topic (0 lost), byte for byte and keyed by the chain;
// what was produced but not yet acked is produced again (the duplicates,
// counted; the central side drops them by chain and seq).
func TestKafkaProducerKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 100000
	dir := t.TempDir()
	brokers := startKfake(t, dir, "declaragent-audit")
	db := genDB(t, dir, "audit.db", n)
	want := strings.Split(strings.TrimSpace(sh(t, dir, "audit-read --db audit.db --quiet")), "\n")
	chain := strings.TrimSpace(sh(t, dir, `sqlite3 audit.db "select record_hash from audit_records where seq = 1"`))
	env := kafkaEnv(t, db, brokers)
	c, stderr, done := startProducer(t, dir, env)
	var at int
	waitFor(t, "a first ack", 30*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("kafka-producer.sh ended: %v\n%s", err, stderr.String())
		default:
		}
		at = cursor(t, db, env["EXPORTER"])
		return at > 0
	})
	syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	<-done
	killed := cursor(t, db, env["EXPORTER"])
	if killed >= n {
		t.Fatalf("the pipeline had shipped all %d records before the kill (cursor %d): not mid-stream", n, killed)
	}
	_, stderr2, done2 := startProducer(t, dir, env)
	waitFor(t, fmt.Sprintf("cursor at %d after the restart", n), 60*time.Second, func() bool {
		select {
		case err := <-done2:
			t.Fatalf("kafka-producer.sh (rerun) ended: %v\n%s", err, stderr2.String())
		default:
		}
		return cursor(t, db, env["EXPORTER"]) == n
	})
	msgs := consumeTopic(t, brokers, env["KAFKA_TOPIC"], n)
	seen := make([]int, n+1)
	for _, r := range msgs {
		if string(r.Key) != chain {
			t.Fatalf("message key %q, want the chain id %s", r.Key, chain)
		}
		var seq int
		for _, h := range r.Headers {
			if h.Key == "seq" {
				seq, _ = strconv.Atoi(string(h.Value))
			}
		}
		if seq < 1 || seq > n || string(r.Value) != want[seq-1] {
			t.Fatalf("message seq %d is not the record line of that seq, byte for byte", seq)
		}
		seen[seq]++
	}
	lost, dups := 0, 0
	for seq := 1; seq <= n; seq++ {
		if seen[seq] == 0 {
			lost++
		}
		if seen[seq] > 1 {
			dups += seen[seq] - 1
		}
	}
	t.Logf("%d records, killed -9 at cursor %d, %d messages: lost %d, duplicates %d", n, killed, len(msgs), lost, dups)
	if lost > 0 {
		t.Fatalf("%d records lost", lost)
	}
}
