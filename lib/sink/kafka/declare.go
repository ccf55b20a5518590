package kafka

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/auditpipe/auditpipe/lib/chain"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	kclient "github.com/auditpipe/auditpipe/lib/kafka"
	"github.com/auditpipe/auditpipe/lib/route"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// Decl declares the kafka sink to audit-ship and audit-batch.
var Decl = &sink.Decl{
	Kind: "kafka",
	Flags: []sink.Flag{
		{Name: "brokers", Help: "bootstrap brokers, host:port[,host:port...]"},
		{Name: "topic", Default: DefaultTopic, Help: "topic, or a template such as 'declaragent-audit-${tenant:id}' (placeholders ${tenant:id}, ${kind}, ${date:YYYY.MM.DD}); audit-ship does not create topics"},
		{Name: "compression", Default: DefaultCompression, Help: "producer batch compression: " + strings.Join(Compressions, ", ")},
		{Name: "chain-id", Help: "the chain id every record is keyed by (default: the chain audit-read's anchor mark names, or the recordHash of a seq 1 record; docs/contract.md section 5)"},
		{Name: "client-id", Default: kclient.DefaultClientID, Help: "Kafka client id (broker logs and quotas)"},
		{Name: "tls", Type: sink.Bool, Help: "connect with TLS (implied by --ca-file, --cert-file, --key-file, --insecure-skip-verify)"},
		sink.FlagCAFile, sink.FlagCertFile, sink.FlagKeyFile, sink.FlagInsecure,
		{Name: "sasl", Help: "SASL mechanism: " + strings.Join(kclient.Mechanisms, ", ") + " (with --username and --password)"},
		{Name: "username", Help: "SASL user name (not a secret)"},
		{Name: "password", Help: "SASL password reference: env:NAME, file:PATH or exec:COMMAND (re-read on every new connection)"},
		{Name: "allow-insecure-sasl", Type: sink.Bool, Help: "allow SASL PLAIN to a non-loopback broker without TLS (the password travels in clear)"},
		{Name: "timeout", Type: sink.Duration, Default: "30s", Help: "how long a record may wait for Kafka's ack before the batch is failed (retryable) and resent"},
		sink.FlagSecretTimeout,
	},
	// A batch's records must reach their partition in seq order: one Send
	// at a time (the client pipelines its own produce requests).
	Sequential: true,
	Batch:      sink.Batch{Records: 2000, Bytes: 2_000_000},
	New:        declared,
	DryRun:     dryRun,
}

func declared(ctx context.Context, v *sink.Values) (sink.Sink, error) {
	cfg, err := config(ctx, v)
	if err != nil {
		return nil, err
	}
	s, err := New(cfg)
	if err != nil {
		return nil, exitcode.New(exitcode.Usage, err)
	}
	return s, nil
}

// config builds the Config from the flags (without resolving the
// password when ctx is nil: --dry-run).
func config(ctx context.Context, v *sink.Values) (Config, error) {
	if v.String("brokers") == "" {
		return Config{}, sink.Usagef("--kind kafka needs --brokers host:port[,host:port...]")
	}
	brokers, err := kclient.ParseBrokers(v.String("brokers"))
	if err != nil {
		return Config{}, v.Usage("brokers", err)
	}
	cfg := Config{
		Client: kclient.Options{
			Brokers: brokers, ClientID: v.String("client-id"),
			TLS: v.Bool("tls"), CAFile: v.String("ca-file"), CertFile: v.String("cert-file"), KeyFile: v.String("key-file"),
			InsecureSkipVerify: v.Bool("insecure-skip-verify"),
			SASL:               strings.ToLower(v.String("sasl")), Username: v.String("username"),
			AllowPlaintextSASL: v.Bool("allow-insecure-sasl"),
		},
		Compression: v.String("compression"),
		Timeout:     v.Duration("timeout"),
	}
	if _, err := codecFor(cfg.Compression); err != nil {
		return Config{}, v.Usage("compression", fmt.Errorf("want %s", strings.Join(Compressions, ", ")))
	}
	if cfg.Timeout <= 0 {
		return Config{}, sink.Usagef("--timeout must be positive")
	}
	t, err := route.Parse(v.String("topic"), route.KafkaTopic)
	if err != nil {
		return Config{}, v.Usage("topic", err)
	}
	if name, ok := t.Static(); ok {
		cfg.Topic = name
	} else {
		cfg.TopicFor = t.Render
	}
	id := v.String("chain-id")
	if id != "" && !chain.IsChainID(id) {
		return Config{}, v.Usage("chain-id", fmt.Errorf("%q: want 1..128 of A-Z a-z 0-9 . _ : - (the chain's first recordHash, or a stable name of your own)", id))
	}
	marks := v.Chain
	cfg.Chain = func() string {
		if id != "" {
			return id
		}
		if marks != nil {
			return marks()
		}
		return ""
	}
	if pw := v.String("password"); pw != "" && ctx != nil {
		if cfg.Client.Password, err = v.Secret(ctx, "password"); err != nil {
			return Config{}, err
		}
	}
	if err := cfg.Client.Validate(); err != nil {
		if cfg.Client.Password == nil && ctx == nil && v.String("password") != "" {
			return cfg, nil // --dry-run: the password is not read
		}
		return Config{}, exitcode.New(exitcode.Usage, fmt.Errorf("--kind kafka: %w", err))
	}
	return cfg, nil
}

// dryRun prints the messages the first batch would become.
func dryRun(v *sink.Values, w io.Writer, recs []sink.Record) error {
	cfg, err := config(nil, v)
	if err != nil {
		return err
	}
	s := &Sink{cfg: cfg, topic: cfg.Topic}
	sasl := "none"
	if cfg.Client.SASL != "" {
		sasl = cfg.Client.SASL + " as " + cfg.Client.Username + " (password " + v.String("password") + ", not read)"
	}
	fmt.Fprintf(w, "\nproduce to %s (TLS %v, SASL %s), idempotent, acks=all, compression %s; one message per record:\n",
		strings.Join(cfg.Client.Brokers, ","), cfg.Client.TLSOn(), sasl, cfg.Compression)
	for i := range recs {
		r := &recs[i]
		c := s.chainOf(r)
		if c == "" {
			c = "(none: the batch would fail, give --chain-id)"
		}
		topic := cfg.Topic
		if cfg.TopicFor != nil {
			topic = cfg.TopicFor(r)
		}
		fmt.Fprintf(w, "topic %s key %s headers seq=%s recordHash=%s tenant=%s chain=%s\n", topic, c, strconv.FormatInt(r.Seq, 10), r.Hash, r.TenantID, c)
		w.Write(r.Line)
		io.WriteString(w, "\n")
	}
	return nil
}
