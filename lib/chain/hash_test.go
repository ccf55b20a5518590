package chain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/auditpipe/auditpipe/lib/canon"
)

func TestHash(t *testing.T) {
	tests := []struct {
		prev, canonical, want string
	}{
		// sha256("\n"): the genesis hash of an empty canonical form.
		{"", "", "01ba4719c80b6fe911b091a7c05124b64eeece964e09c058ef8f9805daca546b"},
		// sha256("abc\n{}")
		{"abc", "{}", hex.EncodeToString(func() []byte { s := sha256.Sum256([]byte("abc\n{}")); return s[:] }())},
	}
	for _, tt := range tests {
		sum := Hash(tt.prev, []byte(tt.canonical))
		if got := hex.EncodeToString(sum[:]); got != tt.want {
			t.Errorf("Hash(%q, %q) = %s, want %s", tt.prev, tt.canonical, got, tt.want)
		}
		if got := string(AppendHexHash([]byte("x"), tt.prev, []byte(tt.canonical))); got != "x"+tt.want {
			t.Errorf("AppendHexHash(%q, %q) = %s, want x%s", tt.prev, tt.canonical, got, tt.want)
		}
	}
	// The separator is a newline and the order is prev, then canonical.
	prev := strings.Repeat("ab", 32)
	canon := []byte(`{"a":"é😀"}`)
	want := sha256.Sum256([]byte(prev + "\n" + string(canon)))
	if got := Hash(prev, canon); got != want {
		t.Errorf("Hash(%q, %q) = %x, want %x", prev, canon, got, want)
	}
	if got := Hash(prev+"\n", canon[1:]); got == want {
		t.Error("Hash is not sensitive to where prevHash ends")
	}
}

func TestHashAllocs(t *testing.T) {
	if canonRace {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	raw := []byte(benchRecord)
	buf := make([]byte, 0, 1024)
	prev := strings.Repeat("0f", 32)
	if n := testing.AllocsPerRun(100, func() { _ = Hash(prev, raw) }); n != 0 {
		t.Errorf("Hash allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(100, func() { buf = AppendHexHash(buf[:0], prev, raw) }); n != 0 {
		t.Errorf("AppendHexHash allocates %v times per call", n)
	}
}

func BenchmarkHash(b *testing.B) {
	canonical, err := canon.Append(nil, []byte(benchRecord))
	if err != nil {
		b.Fatal(err)
	}
	prev := strings.Repeat("0f", 32)
	buf := make([]byte, 0, 64)
	b.SetBytes(int64(len(canonical)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendHexHash(buf[:0], prev, canonical)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func TestHashLongPrevHash(t *testing.T) {
	// prevHash is 64 hex characters in practice; any string must work.
	for _, n := range []int{0, 1, 64, 127, 128, 129, 255, 256, 1000} {
		prev := strings.Repeat("x", n)
		want := sha256.Sum256([]byte(prev + "\n" + "{}"))
		if got := Hash(prev, []byte("{}")); got != want {
			t.Errorf("len(prevHash) %d: Hash = %x, want %x", n, got, want)
		}
	}
}

// benchRecord is lib/canon's benchmark record (canonBenchRecord): a
// realistic ~500-byte audit record with unsorted keys.
const benchRecord = `{"kind":"tool_call","ts":1764244808281,"tenantId":"acme","actor":"agent:support",` +
	`"tool":"shell.exec","decision":"allow","durationMs":480,"requestId":"3f2b9c1e-8a4d-4e7b-9c2a-1d5e6f7a8b9c",` +
	`"detail":{"command":"ls -la /var/log","cwd":"/home/agent","exitCode":0,"stdoutBytes":18234,` +
	`"truncated":false,"env":{"PATH":"/usr/bin:/bin","LANG":"en_US.UTF-8"},"args":["-la","/var/log"],` +
	`"policy":{"rule":"allow-readonly","matched":true,"score":0.87,"reason":"read-only command in allow list"},` +
	`"note":"café \"quoted\"\n"},"sessionId":"sess_01HZX4K7Q2","channel":"slack","model":"claude-sonnet"}`

// TestHashGolden checks AppendHexHash against the golden vectors: each
// canonical form hashed after the previous recordHash gives its own.
func TestHashGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/chain-public.canonical.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	prev, n := "", 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var l struct {
			Canonical  string `json:"canonical"`
			RecordHash string `json:"recordHash"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if got := string(AppendHexHash(nil, prev, []byte(l.Canonical))); got != l.RecordHash {
			t.Errorf("line %d: AppendHexHash = %s, want %s", n+1, got, l.RecordHash)
		}
		prev = l.RecordHash
		n++
	}
	if n < 40 {
		t.Errorf("only %d vectors", n)
	}
}
