// Package kafka holds the Kafka client options auditpipe's producer
// (lib/sink/kafka, audit-ship --kind kafka) and consumer (audit-consume)
// share: the brokers, TLS, SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) with
// the password given as a lib/secret reference, and the client id. It
// builds franz-go (github.com/twmb/franz-go/pkg/kgo) options; nothing here
// prints a secret.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink/httpsink"
)

// SASL mechanisms, as --sasl spells them.
const (
	SASLNone        = ""
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Mechanisms lists the --sasl values.
var Mechanisms = []string{SASLPlain, SASLScramSHA256, SASLScramSHA512}

// DefaultClientID is the client id brokers log and quota by.
const DefaultClientID = "auditpipe"

// Options are the connection settings of a Kafka client.
type Options struct {
	Brokers  []string // host:port, at least one (the bootstrap list)
	ClientID string   // default DefaultClientID

	// TLS: on when TLS is set or any of the files is given.
	TLS                bool
	CAFile             string
	CertFile, KeyFile  string
	InsecureSkipVerify bool

	// SASL: Mechanism one of Mechanisms, or "" for none. Password is
	// re-resolved on every new connection (a rotated file is picked up).
	SASL     string
	Username string
	Password *secret.Source

	// AllowPlaintextSASL lets PLAIN credentials go to a non-loopback
	// broker without TLS (they travel in clear); refused otherwise.
	AllowPlaintextSASL bool

	DialTimeout time.Duration // default 10s
}

// ParseBrokers splits a comma-separated broker list and checks every entry
// is host:port with a numeric port.
func ParseBrokers(s string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(s, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" {
			return nil, fmt.Errorf("broker %q: want host:port (e.g. kafka-1.example.com:9092)", b)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("broker %q: port must be 1..65535", b)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("no broker given: want host:port[,host:port...]")
	}
	return out, nil
}

// TLSOn reports whether the connection uses TLS.
func (o *Options) TLSOn() bool {
	return o.TLS || o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" || o.InsecureSkipVerify
}

// Validate checks the options without connecting.
func (o *Options) Validate() error {
	if len(o.Brokers) == 0 {
		return errors.New("no broker given: want host:port[,host:port...]")
	}
	switch strings.ToLower(o.SASL) {
	case SASLNone:
		if o.Username != "" || o.Password != nil {
			return errors.New("a user name or password without a SASL mechanism: give --sasl " + strings.Join(Mechanisms, ", "))
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if o.Username == "" || o.Password == nil {
			return fmt.Errorf("SASL %s needs a user name and a password reference", strings.ToLower(o.SASL))
		}
	default:
		return fmt.Errorf("SASL mechanism %q: want %s", o.SASL, strings.Join(Mechanisms, ", "))
	}
	if strings.EqualFold(o.SASL, SASLPlain) && !o.TLSOn() && !o.AllowPlaintextSASL {
		for _, b := range o.Brokers {
			host, _, _ := net.SplitHostPort(b)
			if !httpsink.IsLoopback(host) {
				return fmt.Errorf("SASL PLAIN without TLS sends the password in clear to %s: turn TLS on, or allow it explicitly", b)
			}
		}
	}
	return nil
}

// ClientOpts returns the franz-go options for the connection. The caller
// adds the producer's or consumer's own.
func (o *Options) ClientOpts() ([]kgo.Opt, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	id := o.ClientID
	if id == "" {
		id = DefaultClientID
	}
	dial := o.DialTimeout
	if dial <= 0 {
		dial = 10 * time.Second
	}
	opts := []kgo.Opt{kgo.SeedBrokers(o.Brokers...), kgo.ClientID(id), kgo.DialTimeout(dial)}
	if o.TLSOn() {
		tc, err := httpsink.TLS{CAFile: o.CAFile, CertFile: o.CertFile, KeyFile: o.KeyFile, InsecureSkipVerify: o.InsecureSkipVerify}.Config("kafka")
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := o.mechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// mechanism is the SASL mechanism, resolving the password on each
// authentication.
func (o *Options) mechanism() sasl.Mechanism {
	user, pw := o.Username, o.Password
	pass := func(ctx context.Context) (string, error) {
		// Each new connection authenticates: read the reference again,
		// so a rotated password file is picked up without a restart
		// (the last good value stands in if it cannot be read now).
		_, _ = pw.Refresh(ctx)
		v, err := pw.Get(ctx)
		if err != nil {
			return "", fmt.Errorf("SASL password %s: %w", pw, err)
		}
		return v, nil
	}
	switch strings.ToLower(o.SASL) {
	case SASLPlain:
		return plain.Plain(func(ctx context.Context) (plain.Auth, error) {
			p, err := pass(ctx)
			return plain.Auth{User: user, Pass: p}, err
		})
	case SASLScramSHA256:
		return scram.Sha256(func(ctx context.Context) (scram.Auth, error) {
			p, err := pass(ctx)
			return scram.Auth{User: user, Pass: p}, err
		})
	case SASLScramSHA512:
		return scram.Sha512(func(ctx context.Context) (scram.Auth, error) {
			p, err := pass(ctx)
			return scram.Auth{User: user, Pass: p}, err
		})
	}
	return nil
}
