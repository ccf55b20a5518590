package httpsink

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
)

// TestAdvice: a transport error gets the fix in audit-ship's words.
func TestAdvice(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("tls: failed to verify certificate: %w", x509.UnknownAuthorityError{}), "--ca-file"},
		{fmt.Errorf("tls: %w", x509.HostnameError{Host: "h"}), "not for this host name"},
		{&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "hec.invalid", IsNotFound: true}}, "does not resolve"},
		{&net.OpError{Op: "dial", Err: errors.New("connect: connection refused")}, "nothing accepts connections there"},
		{errors.New("EOF"), ""},
	} {
		got := Advice(c.err)
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("Advice(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	for _, raw := range []string{"http://127.0.0.1:", "https://hec.example.com:/services/collector", "http://127.0.0.1:0"} {
		if _, err := ParseURL("splunk", raw, "", true); err == nil || !strings.Contains(err.Error(), "port") {
			t.Errorf("ParseURL(%q): %v, want an error about the port", raw, err)
		}
	}
}
