package chain

import "errors"

// Canonical appends to dst the canonical form of the JSON value in raw:
// what ECMAScript computes as JSON.stringify(deepSortKeys(JSON.parse(raw))).
// See CONTRACTS.md section 3.
func Canonical(dst, raw []byte) ([]byte, error) {
	return dst, errors.New("canonical: not implemented yet")
}
