package main

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

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRunServesTopics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrFile := filepath.Join(t.TempDir(), "addrs")
	var stderr bytes.Buffer
	pr, pw, _ := os.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--topic", "audit:6", "--topic", "other", "--addr-file", addrFile}, pw, &stderr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no address line: %v %s", err, stderr.String())
	}
	addrs := strings.Split(strings.TrimSpace(line), ",")
	if len(addrs) != 3 {
		t.Fatalf("addresses %q, want 3 brokers", line)
	}
	for _, a := range addrs {
		if !strings.HasPrefix(a, "127.0.0.1:") {
			t.Fatalf("broker %s not on 127.0.0.1", a)
		}
	}
	if b, _ := os.ReadFile(addrFile); string(b) != line {
		t.Fatalf("--addr-file holds %q, want %q", b, line)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).ListTopics(ctx, "audit", "other")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(md["audit"].Partitions); n != 6 {
		t.Fatalf("audit has %d partitions, want 6", n)
	}
	if n := len(md["other"].Partitions); n != 1 {
		t.Fatalf("other has %d partitions, want 1", n)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "audit", Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop within 5s of the cancel")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--brokers", "0"}, {"--ports", "1,2"}, {"--ports", "a,b,c"}, {"--topic", "x:0"}, {"--topic", ":3"}, {"extra"},
	} {
		var stderr bytes.Buffer
		if err := run(context.Background(), args, &bytes.Buffer{}, &stderr); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestSIGTERM builds the binary and stops it with SIGTERM: exit 0.
func TestSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "kfake")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--topic", "audit:3")
	out, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("no address line: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "kfake: stopped") {
		t.Fatalf("stderr %q", stderr.String())
	}
}
