// Package httpsink holds what the HTTP sinks (splunk, elastic, datadog)
// share: the TLS client configuration, the loopback test that decides
// whether plain http may carry a credential, and Retry-After parsing.
package httpsink

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
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
var escape = func() (t [256]byte) {
	for c := range 0x20 {
		t[c] = 'u'
	}
	t['\b'], t['\f'], t['\n'], t['\r'], t['\t'] = 'b', 'f', 'n', 'r', 't'
	t['"'], t['\\'] = '"', '\\'
	return t
}()

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string: '"' and '\' escaped, control
// bytes as their short form or \u00xx, every other byte (UTF-8 included)
// as it is. It is how the sinks carry a record line as a string, so the
// store keeps its exact bytes.
func AppendJSONString[T string | []byte](dst []byte, s T) []byte {
	var b []byte
	switch v := any(s).(type) {
	case []byte:
		b = v
	case string:
		b = unsafe.Slice(unsafe.StringData(v), len(v))
	}
	return appendJSONString(dst, b)
}

const lsb, msb = 0x0101010101010101, 0x8080808080808080

// appendJSONString is AppendJSONString. It is on the hot path of every
// sink (a record line has a '"' every few bytes), so it looks at eight
// bytes at a time: a word with no '"', '\' or control byte is skipped
// whole, and otherwise the lowest flagged byte is the first to escape (the
// bit tricks below can only flag false positives above a true one).
func appendJSONString(dst, s []byte) []byte {
	dst = slices.Grow(dst, len(s)+len(s)/8+2)
	dst = append(dst, '"')
	start, i := 0, 0
	for i < len(s) {
		if i+8 <= len(s) {
			v := binary.LittleEndian.Uint64(s[i:])
			m := zeroBytes(v^(lsb*'"')) | zeroBytes(v^(lsb*'\\')) | ((v - lsb*0x20) &^ v & msb)
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else if escape[s[i]] == 0 {
			i++
			continue
		}
		c := s[i]
		dst = append(dst, s[start:i]...)
		if e := escape[c]; e == 'u' {
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		} else {
			dst = append(dst, '\\', e)
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// zeroBytes flags (0x80) the lowest zero byte of x, and maybe bytes above it.
func zeroBytes(x uint64) uint64 { return (x - lsb) &^ x & msb }

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
