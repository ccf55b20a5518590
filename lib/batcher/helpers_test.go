package batcher

import (
	"fmt"
	"strings"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// rec returns a record line for seq, padded with filler to about size bytes
// (at least the fixed part).
func rec(seq int64, size int) string {
	h := fmt.Sprintf("%064x", seq)
	s := fmt.Sprintf(`{"seq":%d,"ts":%d,"tenantId":"acme","kind":"tool_call","record":{"kind":"tool_call","ts":%d,"tenantId":"acme","tool":"http.get","pad":"%%s"},"prevHash":"%s","recordHash":"%s"}`,
		seq, 1764244800000+seq, 1764244800000+seq, h, h)
	pad := max(size-len(s)+2, 0)
	return fmt.Sprintf(s, strings.Repeat("x", pad))
}
