package exporterlock

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
)

// TestDrainHoldsTheExporterUntilAcked: a one-shot drain's audit-read has
// read everything long before its records are shipped and acked. Had it
// let go of the exporter then, a second drain starting in that window
// would read the cursor as it was before the first one's acks and ship
// those records again, and nothing would refuse it (its audit-ack starts
// only after the first one's exits, if the first is quick). So audit-read
// holds its role until the cursor covers what it read, while an audit-ack
// holds the exporter's ack role: the second reader is refused, naming it.
func TestDrainHoldsTheExporterUntilAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	bin, dir := t.TempDir(), t.TempDir()
	build(t, bin)
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "HEC_TOKEN=t")
	gen := exec.Command("bash", "-c", "audit-sample --count 3000 | audit-append --db audit.db --quiet")
	gen.Dir, gen.Env = dir, env
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// A slow SIEM: the drain's shipping takes seconds after its read.
	var requests atomic.Int64
	hec := hecfake.New(hecfake.Options{Fault: func(r *hecfake.Request) hecfake.Fault {
		requests.Add(1)
		return hecfake.Fault{Delay: 150 * time.Millisecond}
	}})
	defer hec.Close()
	script := fmt.Sprintf(`set -o pipefail
audit-read --db audit.db --from-cursor splunk:held --quiet \
  | audit-verify --quiet \
  | audit-batch --siem splunk --max-count 100 --quiet \
  | audit-ship --kind splunk --url %s --token env:HEC_TOKEN --exporter splunk:held --inflight 1 --acks - --quiet \
  | audit-ack --db audit.db --exporter splunk:held --quiet`, hec.URL)
	first := exec.Command("bash", "-c", script)
	first.Dir, first.Env = dir, env
	first.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	firstErr := &syncBuf{}
	first.Stderr = firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-first.Process.Pid, syscall.SIGKILL); first.Wait() })
	for deadline := time.Now().Add(20 * time.Second); requests.Load() < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("the SIEM got %d requests in 20 s\n%s", requests.Load(), firstErr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// 3 of 30 batches shipped, one at a time, 150 ms each: the first
	// audit-read has read all 3,000 rows (2 MB) long ago.
	second := exec.Command(filepath.Join(bin, "audit-read"), "--db", "audit.db", "--from-cursor", "splunk:held", "--quiet")
	second.Dir, second.Env = dir, env
	out, err := second.CombinedOutput()
	if err == nil || second.ProcessState.ExitCode() != 2 {
		t.Fatalf("a second reader while the first drain's records are not acked yet: exit %d (%v), want 2; it wrote %d bytes:\n%.300s",
			second.ProcessState.ExitCode(), err, len(out), out)
	}
	if !strings.Contains(string(out), "is in use by another pipeline: its audit-read (pid ") {
		t.Errorf("the refusal does not name the holder:\n%s", out)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("the first drain: %v\n%s", err, firstErr.String())
	}
	// Once the first drain is done (its cursor at 3000), a reader has nothing left.
	third := exec.Command(filepath.Join(bin, "audit-read"), "--db", "audit.db", "--from-cursor", "splunk:held", "--quiet")
	third.Dir, third.Env = dir, env
	out, err = third.Output()
	if err != nil || strings.Count(string(out), `"recordHash"`) != 0 {
		t.Fatalf("a reader after the first drain: %v, %d records, want none", err, strings.Count(string(out), `"recordHash"`))
	}
}
