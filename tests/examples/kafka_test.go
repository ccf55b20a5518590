package examples

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
func TestKafkaProducerScript(t *testing.T) {
	dir := t.TempDir()
	kfake := filepath.Join(dir, "kfake")
	if out, err := exec.Command("go", "build", "-o", kfake, filepath.Join(root, "internal/tools/kfake")).CombinedOutput(); err != nil {
		t.Fatalf("go build kfake: %v\n%s", err, out)
	}
	kc := exec.Command(kfake, "--topic", "declaragent-audit:6")
	kout, _ := kc.StdoutPipe()
	if err := kc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kc.Process.Signal(syscall.SIGTERM); kc.Wait() })
	line, err := bufio.NewReader(kout).ReadString('\n')
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	brokers := strings.TrimSpace(line)

	db := genDB(t, dir, "audit.db", 500)
	want := strings.Split(strings.TrimSpace(sh(t, dir, "audit-read --db audit.db --quiet")), "\n")
	chain := strings.TrimSpace(sh(t, dir, `sqlite3 audit.db "select record_hash from audit_records where seq = 1"`))

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
	// The cluster here has no TLS and no SASL.
	delete(env, "KAFKA_TLS")
	delete(env, "KAFKA_SASL")
	env["DB"], env["KAFKA_BROKERS"], env["METRICS_PORT"] = db, brokers, "off"
	run := filepath.Join(dir, "run")
	os.Mkdir(run, 0o700)
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
	for k, v := range env { // EnvironmentFile= wins over Environment=, as in systemd
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
	waitFor(t, "cursor "+env["EXPORTER"]+" at 500", 30*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("kafka-producer.sh ended: %v\n%s", err, stderr.String())
		default:
		}
		return cursor(t, db, env["EXPORTER"]) == 500
	})

	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(env["KAFKA_TOPIC"]),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var got []string
	for len(got) < len(want) && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if string(r.Key) != chain {
				t.Errorf("message key %q, want the chain id %s", r.Key, chain)
			}
			got = append(got, string(r.Value))
		})
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
