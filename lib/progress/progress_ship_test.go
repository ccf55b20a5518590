package progress

import "testing"

// TestFormatStatusShip: audit-ship's line says what its records are
// (delivered) and its state (requests in flight, failing since when).
func TestFormatStatusShip(t *testing.T) {
	for _, c := range []struct {
		s    Status
		rate float64
		want string
	}{
		{Status{Verb: "delivered"}, 0, "audit-ship: 0 records delivered, 0/s"},
		{Status{Records: 1, Seq: 7, Verb: "delivered"}, 1, "audit-ship: 1 record delivered, 1/s, seq 7"},
		{Status{Records: 2500, Seq: 2500, Verb: "delivered", Note: "2 requests in flight"}, 1250, "audit-ship: 2,500 records delivered, 1,250/s, seq 2500, 2 requests in flight"},
	} {
		if got := formatStatus("audit-ship", c.s, c.rate); got != c.want {
			t.Errorf("formatStatus(%+v, %v)\n got %q\nwant %q", c.s, c.rate, got, c.want)
		}
	}
}
