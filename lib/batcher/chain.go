package batcher

import (
	"bytes"
	"fmt"

	"github.com/auditpipe/auditpipe/lib/chain"
)

var chainMarkPrefix = []byte(`{"mark":{"type":"chain"`)

// ChainOfMark returns the chain a chain mark line names
// ({"mark":{"type":"chain","chain":ID[,"seq":N,"hash":H]}}, lib/chain),
// and ok true. Any other mark line (an anchor, a skip) returns ok false
// and no error: it says nothing of which chain the next records belong to
// (an anchor's optional "chain" is audit-verify's business; the chain
// mark audit-verify writes for it with --chain-mark is what batches
// follow). A chain mark that does not parse is an error: the records after
// it would otherwise be taken for the previous chain's.
func ChainOfMark(line []byte) (id string, ok bool, err error) {
	if !bytes.HasPrefix(line, chainMarkPrefix) {
		return "", false, nil
	}
	m, err := chain.ParseMark(line)
	if err != nil {
		return "", false, fmt.Errorf("bad chain mark: %v", err)
	}
	if m.Type != chain.MarkChain {
		return "", false, nil
	}
	return m.Chain, true, nil
}
