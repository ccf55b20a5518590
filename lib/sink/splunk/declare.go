package splunk

import (
	"context"

	"github.com/auditpipe/auditpipe/lib/route"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// Decl declares the splunk sink to audit-ship and audit-batch.
var Decl = &sink.Decl{
	Kind: "splunk",
	Flags: append([]sink.Flag{
		{Name: "url", Help: "HEC URL (path defaults to " + DefaultPath + ")"},
		sink.FlagGzip,
		{Name: "index", Help: "index, or a template such as 'declaragent_${tenant:id}' (placeholders ${tenant:id}, ${kind}, ${date:YYYY.MM.DD}) (default the token's)"},
		{Name: "source", Help: "source (default declaragent:audit)"},
		{Name: "token", Help: "HEC token reference: env:NAME, file:PATH or exec:COMMAND (a literal token is refused)"},
		{Name: "sourcetype", Default: DefaultSourcetype, Help: "sourcetype"},
		{Name: "host", Help: "host field (default the hostname)"},
		{Name: "indexer-ack", Type: sink.Bool, Help: "ack a batch only once Splunk reports it indexed (channel + ack polling)"},
		{Name: "ack-timeout", Type: sink.Duration, Default: DefaultAckTimeout.String(), Help: "how long to wait for the indexer ack before resending"},
		{Name: "channel", Help: "X-Splunk-Request-Channel GUID (generated with --indexer-ack or --endpoint raw)"},
		{Name: "endpoint", Default: EndpointEvent, Help: "event: one JSON event per record (/services/collector/event); raw: the record lines themselves as the body of /services/collector/raw (needs the sourcetype's line breaking: docs/siems/splunk.md)"},
		{Name: "hec-fields", Type: sink.Bool, Default: "true", Help: "with --endpoint event: send seq, tenantId, kind and recordHash as indexed fields (false: a smaller event; they stay in the line, for spath)"},
	}, sink.HTTPFlags...),
	Agent: []sink.AgentKey{
		{Key: "hecUrl", Flag: "url"}, {Key: "token", Flag: "token"}, {Key: "index", Flag: "index"},
		{Key: "sourcetype", Flag: "sourcetype"}, {Key: "source", Flag: "source"},
	},
	Batch:  sink.Batch{Records: 500, Bytes: 800_000},
	Limits: sink.Limits{Bytes: 1_000_000, Why: "Splunk Cloud's HEC request limit of 1 MB"},
	New:    declared,
}

func declared(ctx context.Context, v *sink.Values) (sink.Sink, error) {
	if v.String("url") == "" {
		return nil, sink.Usagef("--kind splunk needs --url (the HEC endpoint)")
	}
	if v.String("token") == "" {
		return nil, sink.Usagef("--kind splunk needs --token env:NAME, file:PATH or exec:COMMAND")
	}
	h := v.HTTP()
	cfg := Config{
		URL: h.URL, Source: v.String("source"), Sourcetype: v.String("sourcetype"), Host: v.String("host"),
		Gzip: h.Gzip, IndexerAck: v.Bool("indexer-ack"), AckTimeout: v.Duration("ack-timeout"), Channel: v.String("channel"),
		Endpoint: v.String("endpoint"), NoFields: !v.Bool("hec-fields"),
		Conn: h.Conn,
	}
	switch cfg.Endpoint {
	case EndpointEvent, EndpointRaw:
	default:
		return nil, sink.Usagef("--endpoint %s: want event or raw", cfg.Endpoint)
	}
	var err error
	if cfg.Index, cfg.IndexFor, err = route.FromFlag(v, "index", route.SplunkIndex); err != nil {
		return nil, err
	}
	if cfg.Endpoint == EndpointRaw && cfg.IndexFor != nil {
		return nil, sink.Usagef("--endpoint raw sends one index per request (a query parameter): --index %s is a template, which needs --endpoint event", v.String("index"))
	}
	if cfg.Token, err = v.Secret(ctx, "token"); err != nil {
		return nil, err
	}
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}
