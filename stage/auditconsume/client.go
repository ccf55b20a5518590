package auditconsume

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	kclient "github.com/auditpipe/auditpipe/lib/kafka"
	"github.com/auditpipe/auditpipe/lib/metrics"
	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/stagemetrics"
)

// clientOpts builds the Kafka connection from the flags through lib/kafka,
// as audit-ship --kind kafka does: brokers, client id, TLS, SASL with the
// password as a secret reference (re-read on each new connection). A bad
// setting is a usage error (exit 2) naming it.
func (c *config) clientOpts(ctx context.Context) ([]kgo.Opt, error) {
	brokers, err := kclient.ParseBrokers(c.brokers)
	if err != nil {
		return nil, cli.Usagef("--brokers: %v", err)
	}
	c.kafka.Brokers, c.kafka.ClientID = brokers, c.clientID
	if c.password != "" {
		src, err := secret.NewSourceWith(ctx, c.password, secret.Options{ExecTimeout: c.secretTimout})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, exitcode.New(exitcode.Usage, fmt.Errorf("--password: %w", err))
		}
		c.kafka.Password = src
	}
	opts, err := c.kafka.ClientOpts()
	if err != nil {
		return nil, cli.Usagef("%v (--sasl, --username, --password, --tls, --allow-insecure-sasl)", err)
	}
	return opts, nil
}

// register exposes the consumer's counters, read under its lock at scrape
// time (lib/metrics' one table of names).
func (cs *consumer) register(ms *stagemetrics.Stage) {
	read := func(f func() int64) func() float64 {
		return func() float64 {
			cs.mu.Lock()
			defer cs.mu.Unlock()
			return float64(f())
		}
	}
	ms.CounterFunc(metrics.NameRecordsOut, "", read(func() int64 { return cs.written }))
	ms.CounterFunc(metrics.NameConsumeAcks, "", read(func() int64 { return cs.acks }))
	ms.CounterFunc(metrics.NameConsumeCommits, "", read(func() int64 { return cs.commits }))
	ms.GaugeFunc(metrics.NameConsumeInflight, "", read(func() int64 { return int64(cs.t.inFlight) }))
	ms.GaugeFunc(metrics.NameConsumeHeldChains, "", read(func() int64 {
		n := int64(0)
		for _, c := range cs.t.chains {
			if c.held {
				n++
			}
		}
		return n
	}))
}
