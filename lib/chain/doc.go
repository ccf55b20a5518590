// Package chain is the hash chain of docs/contract.md: parsing a record
// line strictly and without allocating (LineParser), the chain hash of a
// canonical record (Hash, AppendHexHash, IsHexHash), and the Verifier that
// turns a stream of lines into findings with public reason codes, holding
// O(1) state plus a fixed window. The canonical form itself is lib/canon.
package chain
