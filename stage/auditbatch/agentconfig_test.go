package auditbatch

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

// TestAgentConfig: --agent-config reads the same agent.yaml audit-ship
// reads: its kind is the --siem preset, batchSize --max-count, intervalMs
// --max-interval; flags win; a value over the SIEM's limit names the line.
func TestAgentConfig(t *testing.T) {
	seed := filepath.Join("..", "..", "lib", "agentconfig", "testdata", "splunk.yaml") // batchSize 200, intervalMs 5000
	dir := t.TempDir()
	fast := filepath.Join(dir, "fast.yaml")
	os.WriteFile(fast, []byte("audit:\n  export:\n    kind: datadog\n    apiKey: env:DD\n    batchSize: 7\n    intervalMs: 20\n"), 0o600)
	big := filepath.Join(dir, "big.yaml")
	os.WriteFile(big, []byte("audit:\n  export:\n    kind: datadog\n    apiKey: env:DD\n    batchSize: 5000\n"), 0o600)

	c, err := parseFlags([]string{"--agent-config", seed}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.siem != "splunk" || c.lim.MaxCount != 200 || c.lim.MaxInterval != 5*time.Second {
		t.Errorf("seed splunk.yaml: siem %q count %d interval %v", c.siem, c.lim.MaxCount, c.lim.MaxInterval)
	}
	c, err = parseFlags([]string{"--agent-config", fast}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.siem != "datadog" || c.lim.MaxCount != 7 || c.lim.MaxInterval != 20*time.Millisecond || c.lim.MinInterval > 20*time.Millisecond {
		t.Errorf("fast.yaml: siem %q count %d interval %v..%v", c.siem, c.lim.MaxCount, c.lim.MinInterval, c.lim.MaxInterval)
	}
	c, err = parseFlags([]string{"--agent-config", seed, "--max-count", "50", "--max-interval", "1s"}, io.Discard)
	if err != nil || c.lim.MaxCount != 50 || c.lim.MaxInterval != time.Second {
		t.Errorf("flags must win: %v count %d interval %v", err, c.lim.MaxCount, c.lim.MaxInterval)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--agent-config", big}, "audit.export.batchSize (line 5) 5000 is above Datadog"},
		{[]string{"--agent-config", seed, "--siem", "elastic"}, "audit.export.kind is splunk"},
		{[]string{"--agent-config", filepath.Join(dir, "none.yaml")}, "--agent-config"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
}
