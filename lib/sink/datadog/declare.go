package datadog

import (
	"context"
	"strings"

	"github.com/auditpipe/auditpipe/lib/route"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// Decl declares the datadog sink to audit-ship and audit-batch.
var Decl = &sink.Decl{
	Kind: "datadog",
	Flags: append([]sink.Flag{
		{Name: "url", Help: "intake base URL instead of --site's (a proxy, VictoriaLogs)"},
		sink.FlagGzip,
		{Name: "source", Help: "ddsource (default declaragent:audit)"},
		{Name: "api-key", Help: "API key, a reference: env:NAME, file:PATH or exec:COMMAND"},
		{Name: "site", Default: DefaultSite, Help: "site: " + strings.Join(Sites, ", ")},
		{Name: "service", Default: DefaultService, Help: "service"},
		{Name: "tags", Help: "ddtags, k:v,k:v, or a template such as 'env:prod,tenant:${tenant:id}'"},
		{Name: "hostname", Help: "hostname (default the hostname)"},
	}, sink.HTTPFlags...),
	Agent: []sink.AgentKey{
		{Key: "apiKey", Flag: "api-key"}, {Key: "site", Flag: "site"}, {Key: "service", Flag: "service"},
		{Key: "source", Flag: "source"}, {Key: "tags", Flag: "tags"},
	},
	Batch: sink.Batch{Records: 1000, Bytes: 4_000_000},
	Limits: sink.Limits{Records: MaxLogs, Bytes: MaxRequestBytes, RecordBytes: MaxLogBytes,
		Why: "Datadog Logs' request limit of 1000 logs and 5 MB uncompressed"},
	New: declared,
}

func declared(ctx context.Context, v *sink.Values) (sink.Sink, error) {
	if v.String("api-key") == "" {
		return nil, sink.Usagef("--kind datadog needs --api-key env:NAME, file:PATH or exec:COMMAND")
	}
	h := v.HTTP()
	cfg := Config{
		Site: v.String("site"), URL: h.URL, Service: v.String("service"), Source: v.String("source"), Hostname: v.String("hostname"), Gzip: h.Gzip,
		CAFile: h.CAFile, CertFile: h.CertFile, KeyFile: h.KeyFile, InsecureSkipVerify: h.InsecureSkipVerify,
		AllowInsecureHTTP: h.AllowHTTP, Timeout: h.Timeout, MaxIdleConns: h.MaxIdleConns, Transport: h.Transport,
	}
	if tags := v.String("tags"); tags != "" {
		t, err := route.Parse(tags, route.DatadogTags)
		if err != nil {
			return nil, v.Usage("tags", err)
		}
		if s, ok := t.Static(); ok {
			cfg.Tags = s
		} else {
			cfg.TagsFor = t.Render
		}
	}
	var err error
	if cfg.APIKey, err = v.Secret(ctx, "api-key"); err != nil {
		return nil, err
	}
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}
