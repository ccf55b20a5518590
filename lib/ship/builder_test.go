package ship

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Builder (the in-process batcher's way in) makes the same Batch as
// ReadBatches makes from the same batch as framing text: records
// byte-exact, escaped labels decoded, and a line that is not a record
// envelope returned with the error.
func TestBuilderMatchesReadBatches(t *testing.T) {
	var lines []string
	for seq := int64(1); seq <= 5; seq++ {
		lines = append(lines, fuzzRecord(seq))
	}
	// An escaped tenant (decoded into the parser's scratch, then copied).
	lines = append(lines, `{"seq":6,"ts":6,"tenantId":"ac\u006de \"x\"","kind":"tool_call","record":{"s":"é 😀 \u2028"},"prevHash":"","recordHash":"`+fmt.Sprintf("%064x", 6)+`"}`)
	body := strings.Join(lines, "\n") + "\n"

	out := make(chan *Batch, 1)
	if err := ReadBatches(context.Background(), strings.NewReader(fuzzHeader(9, len(lines), 1, 6)+"\n"+body), out, 0); err != nil {
		t.Fatal(err)
	}
	want := <-out

	var bd Builder
	buf := []byte(body)
	got, bad, err := bd.Build(9, buf)
	if err != nil {
		t.Fatalf("Build: %v (line %q)", err, bad)
	}
	// The Batch owns a copy: the batcher reuses its buffer.
	for i := range buf {
		buf[i] = 'x'
	}
	if got.ID != want.ID || len(got.Records) != len(want.Records) {
		t.Fatalf("batch %d with %d records, want %d with %d", got.ID, len(got.Records), want.ID, len(want.Records))
	}
	for i := range want.Records {
		if !reflect.DeepEqual(got.Records[i], want.Records[i]) || string(got.Records[i].Line) != lines[i] {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got.Records[i], want.Records[i])
		}
	}
	if got.Records[5].TenantID != `acme "x"` {
		t.Errorf("escaped tenant %q", got.Records[5].TenantID)
	}

	// Reused for the next batch; a bad envelope is named.
	badLine := `{"seq":8,"ts":8}`
	_, bad, err = bd.Build(10, []byte(fuzzRecord(7)+"\n"+badLine+"\n"))
	if err == nil || string(bad) != badLine {
		t.Errorf("bad envelope: err %v, line %q", err, bad)
	}
}
