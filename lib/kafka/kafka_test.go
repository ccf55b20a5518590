package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/lib/secret"
)

func TestParseBrokers(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "127.0.0.1:9092", want: []string{"127.0.0.1:9092"}},
		{in: " a:1, b:2 ,", want: []string{"a:1", "b:2"}},
		{in: "[::1]:9093", want: []string{"[::1]:9093"}},
		{in: "", wantErr: "no broker given"},
		{in: "kafka", wantErr: `broker "kafka": want host:port`},
		{in: "kafka:0", wantErr: "port must be 1..65535"},
		{in: "kafka:http", wantErr: "port must be 1..65535"},
		{in: ":9092", wantErr: "want host:port"},
	}
	for _, tt := range tests {
		got, err := ParseBrokers(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseBrokers(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("ParseBrokers(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func source(t *testing.T, value string) *secret.Source {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := secret.NewSource(context.Background(), "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidate(t *testing.T) {
	pw := source(t, "s3cret")
	tests := []struct {
		name    string
		o       Options
		wantErr string
	}{
		{"plain brokers", Options{Brokers: []string{"k:9092"}}, ""},
		{"no brokers", Options{}, "no broker given"},
		{"scram", Options{Brokers: []string{"k:9092"}, SASL: "SCRAM-SHA-512", Username: "u", Password: pw}, ""},
		{"plain over TLS", Options{Brokers: []string{"k:9093"}, SASL: "plain", Username: "u", Password: pw, TLS: true}, ""},
		{"plain in clear to loopback", Options{Brokers: []string{"127.0.0.1:9092"}, SASL: "plain", Username: "u", Password: pw}, ""},
		{"plain in clear to a remote broker", Options{Brokers: []string{"k:9092"}, SASL: "plain", Username: "u", Password: pw}, "sends the password in clear to k:9092"},
		{"plain in clear, allowed", Options{Brokers: []string{"k:9092"}, SASL: "plain", Username: "u", Password: pw, AllowPlaintextSASL: true}, ""},
		{"unknown mechanism", Options{Brokers: []string{"k:9092"}, SASL: "gssapi", Username: "u", Password: pw}, `SASL mechanism "gssapi": want plain, scram-sha-256, scram-sha-512`},
		{"mechanism without user", Options{Brokers: []string{"k:9092"}, SASL: "scram-sha-256", Password: pw}, "needs a user name and a password reference"},
		{"user without mechanism", Options{Brokers: []string{"k:9092"}, Username: "u"}, "without a SASL mechanism"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
}

func TestClientOptsTLSFiles(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	o := Options{Brokers: []string{"k:9093"}, CAFile: bad}
	if _, err := o.ClientOpts(); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Fatalf("ClientOpts with a bad CA file = %v", err)
	}
	o.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := o.ClientOpts(); err == nil || !strings.Contains(err.Error(), "read CA file") {
		t.Fatalf("ClientOpts with a missing CA file = %v", err)
	}
}

// TestSASLAgainstKfake authenticates to a 3-broker kfake cluster with each
// mechanism: the right password connects, a wrong one is refused.
func TestSASLAgainstKfake(t *testing.T) {
	for _, mech := range []struct{ ours, kfake string }{
		{SASLPlain, "PLAIN"}, {SASLScramSHA256, "SCRAM-SHA-256"}, {SASLScramSHA512, "SCRAM-SHA-512"},
	} {
		t.Run(mech.ours, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.EnableSASL(), kfake.Superuser(mech.kfake, "shipper", "right-pw"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, tc := range []struct {
				pw string
				ok bool
			}{{"right-pw", true}, {"wrong-pw", false}} {
				o := Options{Brokers: c.ListenAddrs(), SASL: mech.ours, Username: "shipper", Password: source(t, tc.pw)}
				opts, err := o.ClientOpts()
				if err != nil {
					t.Fatal(err)
				}
				cl, err := kgo.NewClient(append(opts, kgo.RetryTimeout(2*time.Second))...)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err = cl.Ping(ctx)
				cancel()
				cl.Close()
				if tc.ok && err != nil {
					t.Errorf("%s with the right password: %v", mech.ours, err)
				}
				if !tc.ok && err == nil {
					t.Errorf("%s with a wrong password connected", mech.ours)
				}
				if err != nil && strings.Contains(err.Error(), tc.pw) {
					t.Errorf("error shows the password: %v", err)
				}
			}
		})
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 to dir/ca.pem
// and returns the server's TLS configuration.
func selfSigned(t *testing.T, dir string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// TestTLSAgainstKfake: with --ca-file the client trusts the cluster's
// certificate and connects (with SCRAM on top); without it, the system
// roots refuse the self-signed certificate; without TLS the TLS listener
// gets no answer it can use.
func TestTLSAgainstKfake(t *testing.T) {
	dir := t.TempDir()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.TLS(selfSigned(t, dir)), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "shipper", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ping := func(o Options) error {
		opts, err := o.ClientOpts()
		if err != nil {
			return err
		}
		cl, err := kgo.NewClient(append(opts, kgo.RetryTimeout(time.Second))...)
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return cl.Ping(ctx)
	}
	base := Options{Brokers: c.ListenAddrs(), SASL: SASLScramSHA512, Username: "shipper", Password: source(t, "pw")}
	trusted := base
	trusted.CAFile = filepath.Join(dir, "ca.pem")
	if err := ping(trusted); err != nil {
		t.Fatalf("TLS with --ca-file: %v", err)
	}
	roots := base
	roots.TLS = true
	if err := ping(roots); err == nil {
		t.Fatal("TLS against a self-signed certificate connected without --ca-file")
	}
	if err := ping(base); err == nil {
		t.Fatal("a plaintext client talked to the TLS listener")
	}
}
