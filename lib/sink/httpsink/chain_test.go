package httpsink

import (
	"testing"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// TestAppendChainFields: "chain" follows prevHash only when the record
// names its chain, escaped as a JSON string; without one the bytes are
// those of before.
func TestAppendChainFields(t *testing.T) {
	r := sink.Record{TenantID: "acme", Kind: "k", Hash: "h", PrevHash: "p"}
	const base = `,"tenantId":"acme","kind":"k","recordHash":"h","prevHash":"p"`
	if got := string(AppendChainFields(nil, &r)); got != base {
		t.Errorf("no chain: %s, want %s", got, base)
	}
	r.Chain = "host-a:1"
	if got, want := string(AppendChainFields(nil, &r)), base+`,"chain":"host-a:1"`; got != want {
		t.Errorf("chain: %s, want %s", got, want)
	}
}
