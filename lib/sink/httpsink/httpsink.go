// Package httpsink holds what the HTTP sinks (splunk, elastic, datadog)
// share: the TLS client configuration, the loopback test that decides
// whether plain http may carry a credential, and Retry-After parsing.
package httpsink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditpipe/auditpipe/lib/jsonstr"
)

// IsLoopback reports whether host (no port) is localhost or a loopback IP:
// the only place a credential may go over plain http without the user
// saying so.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// TLS is the TLS part of a sink's configuration.
type TLS struct {
	CAFile             string // PEM bundle trusted instead of the system roots
	CertFile, KeyFile  string // PEM client certificate and key (both or neither)
	InsecureSkipVerify bool
}

// Config returns the client TLS configuration: TLS 1.2 or later, the CA
// file's roots if given, the client certificate if given. Errors are
// prefixed with name (the sink's name).
func (t TLS) Config(name string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: read CA file: %w", name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: CA file %s holds no PEM certificate", name, t.CAFile)
		}
		c.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New(name + ": a client certificate needs both CertFile and KeyFile")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: load client certificate: %w", name, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// RetryAfter parses a Retry-After header: delay seconds or an HTTP date
// (relative to now). Anything else, or a date in the past, is 0.
func RetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.ParseUint(h, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// escape maps each byte that JSON requires escaped to its short form, 'u'
// for the \u00XX ones, 0 for bytes written as they are.
// AppendJSONString appends s as a JSON string (lib/jsonstr): '"' and '\'
// escaped, control bytes as their short form or \u00xx, every other byte
// (UTF-8 included) as it is. It is how the sinks carry a record line as a
// string, so the store keeps its exact bytes.
func AppendJSONString[T string | []byte](dst []byte, s T) []byte {
	switch v := any(s).(type) {
	case []byte:
		return jsonstr.Append(dst, v)
	case string:
		return jsonstr.AppendString(dst, v)
	}
	panic("unreachable")
}

// MaxMessage is how much of a SIEM's response text an error keeps.
const MaxMessage = 512

// Clean makes a SIEM's response text safe to show: every secret replaced by
// mask (a SIEM may echo the credential it refused), control characters as
// spaces, trimmed, and cut to MaxMessage bytes at a rune boundary.
func Clean(text string, secrets []string, mask string) string {
	for _, t := range secrets {
		if t != "" {
			text = strings.ReplaceAll(text, t, mask)
		}
	}
	text = strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, strings.TrimSpace(text))
	if len(text) > MaxMessage {
		cut := MaxMessage
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	return text
}
