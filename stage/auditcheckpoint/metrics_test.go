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

// TestSealWitnessMetrics: with --witness, how far the witnesses cosigned,
// how long the log has gone unwitnessed, and the refusals.
func TestSealWitnessMetrics(t *testing.T) {
	for _, down := range []bool{false, true} {
		dir, skey, _, w, wfile := witnessSetup(t)
		w.SetDown(down)
		ck, prom := filepath.Join(dir, "ck.ndjson"), filepath.Join(dir, "seal.prom")
		r := run(t, t.Context(), records(1, 60, 0, ""), "seal", "--signer", skey, "--out", ck, "--every", "25", "--interval", "0",
			"--metrics-file", prom, "--metrics-exporter", "splunk:prod", "--witness-file", wfile, "--witness-flush", "100ms")
		if r.code != 0 {
			t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
		}
		b, _ := os.ReadFile(prom)
		const l = `{binary="audit-checkpoint",exporter="splunk:prod",vendor="splunk"} `
		want := []string{"auditpipe_checkpoint_witnessed_size" + l + "60\n", "auditpipe_checkpoint_unwitnessed_seconds" + l + "0\n", "auditpipe_witness_refusals_total" + l + "0\n"}
		if down {
			want = []string{"auditpipe_checkpoint_witnessed_size" + l + "0\n", "auditpipe_checkpoint_unwitnessed_seconds" + l + "0.", "auditpipe_witness_refusals_total" + l + "0\n"}
		}
		for _, x := range want {
			if !strings.Contains(string(b), x) {
				t.Errorf("down=%v: textfile lacks %q\n%s", down, x, b)
			}
		}
	}
}
