// Package canon computes the canonical form of a record (docs/contract.md
// section 3): what ECMAScript computes as
// JSON.stringify(deepSortKeys(JSON.parse(raw))), byte for byte, including
// key order by UTF-16 code units, "last duplicate wins", no __proto__,
// Number::toString and lone surrogates. The chain hash covers these bytes,
// so a difference from the JavaScript writer is a false tamper finding:
// the golden vectors (lib/chain/testdata) and a cross-check against Node
// (TestCanonicalNode) hold it to that.
package canon
