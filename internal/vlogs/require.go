package vlogs

import (
	"context"
	"os"
	"testing"
)

// Require starts a server for the test and registers its Stop with
// t.Cleanup (a Stop error fails the test). Without the binary it skips the
// test, except with CI=true in the environment, where the binary is always
// installed and its absence fails the test instead.
func Require(t testing.TB) *Server {
	t.Helper()
	bin, ok := Available()
	if !ok {
		msg := "victoria-logs not available"
		if _, err := findBinary(); err != nil {
			msg += ": " + err.Error()
		} else {
			msg += " at " + bin + " (run scripts/install-victorialogs.sh or set " + EnvBinary + ")"
		}
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true, so this is a failure")
		}
		t.Skip(msg)
	}
	s, err := Start(context.Background(), Options{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}
