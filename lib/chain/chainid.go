package chain

// IsChainID reports whether s is usable as a chain id (docs/contract.md
// section 5): 1 to 128 bytes of [A-Za-z0-9._:-] (ValidChainID).
func IsChainID(s string) bool { return ValidChainID(s) == nil }
