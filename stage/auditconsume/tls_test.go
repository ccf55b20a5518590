package auditconsume_test

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
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	kclient "github.com/auditpipe/auditpipe/lib/kafka"
	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/stage/auditconsume"
)

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
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// TestTLSSASLAndMetrics: audit-consume reaches a TLS cluster that wants
// SCRAM-SHA-512 with the flags of audit-ship --kind kafka (--ca-file,
// --sasl, --username, --password as a secret reference), delivers every
// chain, and its metrics (--metrics-file) count the records written, the
// acks taken and the commits, with nothing in flight and no chain held at
// the end. Bad SASL flags are a usage error (exit 2) naming them.
func TestTLSSASLAndMetrics(t *testing.T) {
	dir := t.TempDir()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(4, topic), kfake.TLS(selfSigned(t, dir)),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "central", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := strings.Join(c.ListenAddrs(), ",")
	t.Setenv("AP_TEST_KAFKA_PW", "s3cret")
	pw, err := secret.NewSourceWith(context.Background(), "env:AP_TEST_KAFKA_PW", secret.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := kclient.Options{Brokers: c.ListenAddrs(), CAFile: filepath.Join(dir, "ca.pem"), SASL: kclient.SASLScramSHA512, Username: "central", Password: pw}
	opts, err := o.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	pr, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		t.Fatal(err)
	}
	f := newFleet(3, 40)
	var recs []*kgo.Record
	for i := 0; i < 40; i++ {
		for _, id := range f.ids {
			recs = append(recs, &kgo.Record{Key: []byte(id), Value: []byte(f.lines[id][i])})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pr.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pr.Close()

	prom := filepath.Join(dir, "consume.prom")
	d := &delivered{seqs: map[string][]int64{}}
	p := startPipeline(t, brokers, "tls-group", dir, d, "--ca-file", filepath.Join(dir, "ca.pem"),
		"--sasl", "scram-sha-512", "--username", "central", "--password", "env:AP_TEST_KAFKA_PW", "--metrics-file", prom)
	waitFor(t, "every chain over TLS and SCRAM", func() bool {
		for _, id := range f.ids {
			if d.count(id) < 40 {
				return false
			}
		}
		return true
	}, p.stderr.String)
	time.Sleep(300 * time.Millisecond) // a commit after the last acks (--commit-interval 100ms)
	p.stop(t)
	if p.consumeErr != nil {
		t.Fatalf("audit-consume: %v\n%s", p.consumeErr, p.stderr.String())
	}
	for _, id := range f.ids {
		checkChain(t, "tls", d, id, 40)
	}
	text, err := os.ReadFile(prom)
	if err != nil {
		t.Fatal(err)
	}
	val := func(name string) float64 {
		m := regexp.MustCompile(`(?m)^` + name + `\{[^}]*\} (\S+)$`).FindSubmatch(text)
		if m == nil {
			t.Fatalf("%s not in the metrics:\n%s", name, text)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	if v := val("auditpipe_records_out_total"); v != 120 {
		t.Errorf("records out %v, want 120", v)
	}
	if v := val("auditpipe_consume_acks_total"); v != 120 {
		t.Errorf("acks %v, want 120 (one per record from the test shipper)", v)
	}
	if v := val("auditpipe_consume_commits_total"); v < 1 {
		t.Errorf("commits %v, want at least 1", v)
	}
	if v := val("auditpipe_consume_inflight_records"); v != 0 {
		t.Errorf("in flight %v at the end, want 0", v)
	}
	if v := val("auditpipe_consume_held_chains"); v != 0 {
		t.Errorf("held chains %v, want 0", v)
	}

	for _, bad := range [][]string{
		{"--sasl", "scram-sha-512", "--username", "central"},                            // no password
		{"--sasl", "kerberos", "--username", "u", "--password", "env:AP_TEST_KAFKA_PW"}, // no such mechanism
		{"--password", "env:AP_TEST_KAFKA_PW"},                                          // no mechanism
	} {
		args := append([]string{"--brokers", brokers, "--topic", topic, "--group", "g", "--acks", filepath.Join(dir, "x.fifo")}, bad...)
		err := auditconsume.Run(context.Background(), args, nil, os.Stdout, os.Stderr)
		if exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "--sasl") {
			t.Errorf("%v: %v (exit %d), want exit 2 naming the SASL flags", bad, err, exitcode.Of(err))
		}
	}
}
