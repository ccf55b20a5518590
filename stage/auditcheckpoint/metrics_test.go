package auditcheckpoint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSealMetrics: seal takes the metrics flags every pipeline stage takes,
// and its textfile counts the records and the checkpoints.
func TestSealMetrics(t *testing.T) {
	dir := t.TempDir()
	signer, _ := keys(t, dir, "m")
	ck, prom := filepath.Join(dir, "ck.ndjson"), filepath.Join(dir, "seal.prom")
	in := records(1, 60, 0, "")
	r := run(t, t.Context(), in, "seal", "--signer", signer, "--out", ck, "--every", "25", "--interval", "0",
		"--metrics-file", prom, "--metrics-exporter", "splunk:prod")
	if r.code != 0 || r.stdout != string(in) {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(prom)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`auditpipe_records_in_total{binary="audit-checkpoint",exporter="splunk:prod",vendor="splunk"} 60`,
		`auditpipe_records_out_total{binary="audit-checkpoint",exporter="splunk:prod",vendor="splunk"} 60`,
		`auditpipe_stage_last_seq{binary="audit-checkpoint",exporter="splunk:prod",vendor="splunk"} 60`,
		`auditpipe_checkpoints_written_total{binary="audit-checkpoint",exporter="splunk:prod",vendor="splunk"} 3`,
		`auditpipe_checkpoint_sealed_size{binary="audit-checkpoint",exporter="splunk:prod",vendor="splunk"} 60`,
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("textfile lacks %s\n%s", want, b)
		}
	}
}
