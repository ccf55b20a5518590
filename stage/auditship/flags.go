package auditship

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditpipe/auditpipe/lib/agentconfig"
	"github.com/auditpipe/auditpipe/lib/cli"
	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/ndjson"
	"github.com/auditpipe/auditpipe/lib/route"
	"github.com/auditpipe/auditpipe/lib/secret"
	"github.com/auditpipe/auditpipe/lib/sink"
	"github.com/auditpipe/auditpipe/lib/sink/datadog"
	"github.com/auditpipe/auditpipe/lib/sink/elastic"
	"github.com/auditpipe/auditpipe/lib/sink/file"
	"github.com/auditpipe/auditpipe/lib/sink/splunk"
)

// kinds are the --kind values.
var kinds = []string{"splunk", "elastic", "datadog", "file"}

// flagKinds lists, for every flag that applies to some kinds only, those
// kinds; giving it with another --kind is a usage error (a --sourcetype
// with --kind elastic is a mistake, not a no-op).
var flagKinds = map[string][]string{
	"url":                  {"splunk", "elastic", "datadog"},
	"timeout":              {"splunk", "elastic", "datadog"},
	"ca-file":              {"splunk", "elastic", "datadog"},
	"cert-file":            {"splunk", "elastic", "datadog"},
	"key-file":             {"splunk", "elastic", "datadog"},
	"insecure-skip-verify": {"splunk", "elastic", "datadog"},
	"allow-insecure-http":  {"splunk", "elastic", "datadog"},
	"secret-timeout":       {"splunk", "elastic", "datadog"},
	"index":                {"splunk", "elastic"},
	"source":               {"splunk", "datadog"},
	"token":                {"splunk"},
	"sourcetype":           {"splunk"},
	"host":                 {"splunk"},
	"indexer-ack":          {"splunk"},
	"ack-timeout":          {"splunk"},
	"channel":              {"splunk"},
	"api-key":              {"elastic", "datadog"},
	"auth":                 {"elastic"},
	"username":             {"elastic"},
	"password":             {"elastic"},
	"bearer":               {"elastic"},
	"id-field":             {"elastic"},
	"doc-shape":            {"elastic"},
	"site":                 {"datadog"},
	"service":              {"datadog"},
	"tags":                 {"datadog"},
	"hostname":             {"datadog"},
	"path":                 {"file"},
	"dir":                  {"file"},
	"no-fsync":             {"file"},
}

func parse(args []string, stderr io.Writer) (*config, error) {
	fs := cli.NewFlagSet(prog, "AUDIT_SHIP", synopsis, stderr)
	c := &config{origin: map[string]string{}}
	fs.StringVar(&c.kind, "kind", "", "SIEM kind: splunk, elastic, datadog or file (default: --agent-config's kind)")
	fs.StringVar(&c.exporter, "exporter", "", "exporter (cursor) name, <kind>:<instance> (default <kind>:default)")
	fs.StringVar(&c.acks, "acks", "-", "where acks go: a FIFO path read by audit-ack (created if absent), or - for stdout")
	fs.IntVar(&c.inflight, "inflight", 4, "requests in flight at once (acks stay in seq order; always 1 for --kind file)")
	fs.IntVar(&c.pauseAfter, "pause-after", 5, "consecutive non-retryable failures before the shipper pauses itself (exit 6)")
	fs.DurationVar(&c.minBackoff, "min-backoff", 250*time.Millisecond, "first retry delay (exponential, full jitter)")
	fs.DurationVar(&c.maxBackoff, "max-backoff", 30*time.Second, "longest retry delay (a longer Retry-After is honoured)")
	fs.DurationVar(&c.drain, "drain-timeout", 30*time.Second, "after SIGTERM, how long requests in flight may still finish; after them (and at the end of input) how long held acks may wait for audit-ack to read --acks (then exit 8)")
	fs.DurationVar(&c.refused, "refused-backoff", time.Minute, "least wait after the SIEM refused our configuration (401/403) before trying again: a rotated credential has (--pause-after - 1) x this to land before exit 7")
	fs.DurationVar(&c.giveUp, "give-up-after", 0, "stop with exit 8 once deliveries have failed this long without a success (0: retry for ever); for one-shot drains and cron")
	fs.StringVar(&c.quarantine, "quarantine", "", "file for records the SIEM rejects as poison (0600, fsynced before the ack); re-ship with audit-read --quarantine")
	fs.StringVar(&c.onPoison, "on-poison", "", "what a record the SIEM rejects does: quarantine (set it aside in --quarantine, go on) or pause (stop, exit 6) (default quarantine with --quarantine, else pause)")
	fs.IntVar(&c.maxLine, "max-line", ndjson.DefaultMaxLine, "maximum input line length in bytes")
	fs.BoolVar(&c.quiet, "quiet", false, "no summary line on stderr")
	fs.BoolVar(&c.check, "check", false, "probe the SIEM (health and credentials) and exit")
	fs.BoolVar(&c.dryRun, "dry-run", false, "print on stdout the exact requests of the first batch (method, URL, headers with secrets masked, body decoded) and exit; nothing is sent, acked or written")
	c.metrics.Register(fs)
	fs.StringVar(&c.agentConfig, "agent-config", "", "Declaragent agent.yaml: its audit.export block gives defaults for the flags below (flags and env vars win)")
	fs.IntVar(&c.batchSize, "batch-size", 0, "plain-record input: records per batch of the in-process batcher (default the --kind preset, as audit-batch --siem)")
	fs.DurationVar(&c.batchInterval, "batch-interval", 0, "plain-record input: longest a record waits for its batch (audit-batch --max-interval; default 5s)")
	fs.DurationVar(&c.secretTimeout, "secret-timeout", secret.DefaultExecTimeout, "how long an exec: secret reference may run")

	fs.StringVar(&c.url, "url", "", "splunk: HEC URL (path defaults to /services/collector/event); elastic: cluster base URL; datadog: intake base URL instead of --site's (a proxy, VictoriaLogs)")
	fs.BoolVar(&c.gzip, "gzip", true, "compress request bodies (network kinds) or the output (file)")
	fs.DurationVar(&c.timeout, "timeout", splunk.DefaultTimeout, "per-request timeout")
	fs.StringVar(&c.caFile, "ca-file", "", "PEM CA bundle to trust instead of the system roots")
	fs.StringVar(&c.certFile, "cert-file", "", "PEM client certificate")
	fs.StringVar(&c.keyFile, "key-file", "", "PEM client key")
	fs.BoolVar(&c.insecureSkipVerify, "insecure-skip-verify", false, "DANGEROUS: do not verify the SIEM's certificate")
	fs.BoolVar(&c.allowHTTP, "allow-insecure-http", false, "allow a plain http:// URL to a non-loopback host (credentials sent unencrypted)")
	fs.StringVar(&c.index, "index", "", "splunk, elastic: index, or a template such as 'declaragent_${tenant:id}' (placeholders ${tenant:id}, ${kind}, ${date:YYYY.MM.DD}) (default: splunk the token's, elastic declaragent-audit)")
	fs.StringVar(&c.source, "source", "", "splunk: source; datadog: ddsource (default declaragent:audit)")

	fs.StringVar(&c.token, "token", "", "splunk: HEC token reference: env:NAME, file:PATH or exec:COMMAND (a literal token is refused)")
	fs.StringVar(&c.sourcetype, "sourcetype", splunk.DefaultSourcetype, "splunk: sourcetype")
	fs.StringVar(&c.host, "host", "", "splunk: host field (default the hostname)")
	fs.BoolVar(&c.indexerAck, "indexer-ack", false, "splunk: ack a batch only once Splunk reports it indexed (channel + ack polling)")
	fs.DurationVar(&c.ackTimeout, "ack-timeout", splunk.DefaultAckTimeout, "splunk: how long to wait for the indexer ack before resending")
	fs.StringVar(&c.channel, "channel", "", "splunk: X-Splunk-Request-Channel GUID (generated with --indexer-ack)")

	fs.StringVar(&c.apiKey, "api-key", "", "elastic: encoded API key (auth apiKey); datadog: API key; a reference: env:NAME, file:PATH or exec:COMMAND")
	fs.StringVar(&c.auth, "auth", "", "elastic: apiKey, basic, bearer or none (default: the kind of the credential flag given: --api-key, --username/--password or --bearer)")
	fs.StringVar(&c.username, "username", "", "elastic: user name for basic auth (not a secret)")
	fs.StringVar(&c.password, "password", "", "elastic: password reference for basic auth")
	fs.StringVar(&c.bearer, "bearer", "", "elastic: bearer token reference (OAuth2 or service account token)")
	fs.StringVar(&c.idField, "id-field", elastic.IDRecordHash, "elastic: document _id: recordHash (idempotent across database resets) or seq (a 409 is then checked with _mget: needs the read privilege)")
	fs.StringVar(&c.docShape, "doc-shape", elastic.ShapeMessage, "elastic: message (the record line as the string field message, plus searchable fields) or line (the record line itself as the document)")

	fs.StringVar(&c.site, "site", datadog.DefaultSite, "datadog: site: "+strings.Join(datadog.Sites, ", "))
	fs.StringVar(&c.service, "service", datadog.DefaultService, "datadog: service")
	fs.StringVar(&c.tags, "tags", "", "datadog: ddtags, k:v,k:v, or a template such as 'env:prod,tenant:${tenant:id}'")
	fs.StringVar(&c.hostname, "hostname", "", "datadog: hostname (default the hostname)")

	fs.StringVar(&c.path, "path", "", "file: output file (or directory with --dir)")
	fs.BoolVar(&c.dir, "dir", false, "file: --path is a directory of per-day files audit-YYYY-MM-DD.ndjson[.gz]")
	fs.BoolVar(&c.noFsync, "no-fsync", false, "file: do not fsync before acking (a power loss can lose acked batches)")
	_ = fs.String("config", "", "config file (flag value pairs, one per line)")
	if err := cli.Parse(fs, args, "AUDIT_SHIP"); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, cli.Usagef("unexpected argument %q (input is stdin)", fs.Arg(0))
	}
	c.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { c.set[f.Name] = true })

	if c.agentConfig != "" {
		e, err := agentconfig.Load(c.agentConfig)
		if err != nil {
			return nil, exitcode.New(exitcode.Usage, fmt.Errorf("--agent-config: %w", err))
		}
		if c.kind == "" {
			c.kind = e.Kind
		} else if c.kind != e.Kind {
			return nil, cli.Usagef("--kind %s, but %s's audit.export.kind is %s: drop --kind or use another file", c.kind, c.agentConfig, e.Kind)
		}
		c.applyAgent(e)
	}
	switch {
	case c.kind == "":
		return nil, cli.Usagef("--kind is required: splunk, elastic, datadog or file (or --agent-config agent.yaml)")
	case !slices.Contains(kinds, c.kind):
		return nil, cli.Usagef("unknown --kind %q: splunk, elastic, datadog or file", c.kind)
	}
	var names []string
	for name := range c.set {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if ks, ok := flagKinds[name]; ok && !slices.Contains(ks, c.kind) {
			return nil, cli.Usagef("--%s applies to --kind %s, not %s", name, strings.Join(ks, ", "), c.kind)
		}
	}
	if c.exporter == "" {
		c.exporter = c.kind + ":default"
	}
	if c.inflight < 1 || c.inflight > 64 {
		return nil, cli.Usagef("--inflight must be 1..64")
	}
	if c.kind == "file" {
		// A file is written in the order Sends are called: one at a time
		// keeps the archive in seq order, so it stays valid replay input.
		c.inflight = 1
	}
	if c.drain <= 0 || c.refused <= 0 || c.giveUp < 0 {
		return nil, cli.Usagef("--drain-timeout and --refused-backoff must be positive, --give-up-after not negative")
	}
	if c.pauseAfter < 1 {
		return nil, cli.Usagef("--pause-after must be at least 1")
	}
	switch c.onPoison {
	case "":
		c.onPoison = "pause"
		if c.quarantine != "" {
			c.onPoison = "quarantine"
		}
	case "quarantine":
		if c.quarantine == "" {
			return nil, cli.Usagef("--on-poison quarantine needs --quarantine FILE")
		}
	case "pause":
	default:
		return nil, cli.Usagef("--on-poison %q: quarantine or pause", c.onPoison)
	}
	if c.batchSize < 0 || c.batchInterval < 0 {
		return nil, cli.Usagef("--batch-size and --batch-interval must not be negative")
	}
	if c.secretTimeout <= 0 {
		return nil, cli.Usagef("--secret-timeout must be positive")
	}
	if c.dryRun && c.check {
		return nil, cli.Usagef("--dry-run and --check: give one (--check sends a probe, --dry-run sends nothing)")
	}
	return c, nil
}

// applyAgent takes the agent.yaml values of every flag not given
// otherwise. Elastic credentials are one unit: any credential flag
// (--auth, --api-key, --username, --password, --bearer) replaces the
// whole auth block.
func (c *config) applyAgent(e *agentconfig.Export) {
	take := func(flagName, key string, dst *string, v string) {
		if e.Set[key] && !c.set[flagName] {
			*dst = v
			c.origin[flagName] = "--agent-config " + c.agentConfig + ": " + e.Where(key)
		}
	}
	switch e.Kind {
	case "splunk":
		take("url", "hecUrl", &c.url, e.HECURL)
		take("token", "token", &c.token, e.Token)
		take("index", "index", &c.index, e.Index)
		take("sourcetype", "sourcetype", &c.sourcetype, e.Sourcetype)
		take("source", "source", &c.source, e.Source)
	case "elastic":
		take("url", "baseUrl", &c.url, e.BaseURL)
		take("index", "index", &c.index, e.Index)
		if !c.set["auth"] && !c.set["api-key"] && !c.set["username"] && !c.set["password"] && !c.set["bearer"] {
			take("auth", "auth.kind", &c.auth, e.Auth.Kind)
			take("api-key", "auth.apiKey", &c.apiKey, e.Auth.APIKey)
			take("username", "auth.username", &c.username, e.Auth.Username)
			take("password", "auth.password", &c.password, e.Auth.Password)
			take("bearer", "auth.token", &c.bearer, e.Auth.Token)
		}
	case "datadog":
		take("api-key", "apiKey", &c.apiKey, e.APIKey)
		take("site", "site", &c.site, e.Site)
		take("service", "service", &c.service, e.Service)
		take("source", "source", &c.source, e.Source)
		take("tags", "tags", &c.tags, e.Tags)
	}
	if e.Set["batchSize"] && !c.set["batch-size"] {
		c.batchSize = e.BatchSize
		c.origin["batch-size"] = "--agent-config " + c.agentConfig + ": " + e.Where("batchSize")
	}
	if e.Set["intervalMs"] && !c.set["batch-interval"] {
		c.batchInterval = time.Duration(e.IntervalMs) * time.Millisecond
		c.origin["batch-interval"] = "--agent-config " + c.agentConfig + ": " + e.Where("intervalMs")
	}
}

// label names where a flag's value came from, for messages.
func (c *config) label(flagName string) string {
	if o, ok := c.origin[flagName]; ok {
		return o
	}
	return "--" + flagName
}

// batchArgs are the flags of the in-process audit-batch for plain-record
// input.
func (c *config) batchArgs() []string {
	args := []string{"--siem", c.kind, "--quiet", "--max-line", strconv.Itoa(c.maxLine)}
	if c.batchSize > 0 {
		args = append(args, "--max-count", strconv.Itoa(c.batchSize))
	}
	if c.batchInterval > 0 {
		args = append(args, "--max-interval", c.batchInterval.String())
		if c.batchInterval < 50*time.Millisecond { // audit-batch's default --min-interval
			args = append(args, "--min-interval", c.batchInterval.String())
		}
	}
	return args
}

// source resolves the secret reference of flag flagName.
func (c *config) secretSource(ctx context.Context, flagName, ref string) (*secret.Source, error) {
	src, err := secret.NewSourceWith(ctx, ref, secret.Options{ExecTimeout: c.secretTimeout})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, exitcode.New(exitcode.Usage, fmt.Errorf("%s: %w", c.label(flagName), err))
	}
	return src, nil
}

// template parses the routing template of flag flagName.
func (c *config) template(flagName, src string, rules route.Rules) (*route.Template, error) {
	t, err := route.Parse(src, rules)
	if err != nil {
		return nil, exitcode.New(exitcode.Usage, fmt.Errorf("%s: %w", c.label(flagName), err))
	}
	return t, nil
}

func (c *config) newSink(ctx context.Context) (sink.Sink, error) {
	if c.kind == "file" {
		if c.path == "" {
			return nil, cli.Usagef("--kind file needs --path")
		}
		s, err := file.New(file.Config{Path: c.path, Dir: c.dir, Gzip: c.gzip, NoFsync: c.noFsync})
		if err != nil {
			return nil, exitcode.New(exitcode.Usage, err)
		}
		return s, nil
	}
	var (
		s   sink.Sink
		err error
	)
	switch c.kind {
	case "splunk":
		s, err = c.splunkSink(ctx)
	case "elastic":
		s, err = c.elasticSink(ctx)
	case "datadog":
		s, err = c.datadogSink(ctx)
	}
	if err != nil {
		if exitcode.Of(err) == exitcode.Failure && ctx.Err() == nil {
			err = exitcode.New(exitcode.Usage, err) // New's checks: bad URL, TLS files, ...
		}
		return nil, err
	}
	return s, nil
}

func (c *config) splunkSink(ctx context.Context) (sink.Sink, error) {
	if c.url == "" {
		return nil, cli.Usagef("--kind splunk needs --url (the HEC endpoint)")
	}
	if c.token == "" {
		return nil, cli.Usagef("--kind splunk needs --token env:NAME, file:PATH or exec:COMMAND")
	}
	cfg := splunk.Config{
		URL: c.url, Source: c.source, Sourcetype: c.sourcetype, Host: c.host,
		Gzip: c.gzip, IndexerAck: c.indexerAck, AckTimeout: c.ackTimeout, Channel: c.channel,
		CAFile: c.caFile, CertFile: c.certFile, KeyFile: c.keyFile, InsecureSkipVerify: c.insecureSkipVerify,
		AllowInsecureHTTP: c.allowHTTP, Timeout: c.timeout, MaxIdleConns: 2 * c.inflight, Transport: c.transport,
	}
	if c.index != "" {
		t, err := c.template("index", c.index, route.SplunkIndex)
		if err != nil {
			return nil, err
		}
		if name, ok := t.Static(); ok {
			cfg.Index = name
		} else {
			cfg.IndexFor = t.Render
		}
	}
	var err error
	if cfg.Token, err = c.secretSource(ctx, "token", c.token); err != nil {
		return nil, err
	}
	return splunk.New(cfg)
}

func (c *config) elasticSink(ctx context.Context) (sink.Sink, error) {
	if c.url == "" {
		return nil, cli.Usagef("--kind elastic needs --url (the cluster's base URL, e.g. https://es.example.com:9200)")
	}
	cfg := elastic.Config{
		URL: c.url, Gzip: c.gzip, IDField: c.idField, DocShape: c.docShape,
		CAFile: c.caFile, CertFile: c.certFile, KeyFile: c.keyFile, InsecureSkipVerify: c.insecureSkipVerify,
		AllowInsecureHTTP: c.allowHTTP, Timeout: c.timeout, MaxIdleConns: 2 * c.inflight, Transport: c.transport,
	}
	if c.index != "" {
		t, err := c.template("index", c.index, route.ElasticIndex)
		if err != nil {
			return nil, err
		}
		if name, ok := t.Static(); ok {
			cfg.Index = name
		} else {
			cfg.IndexFor = t.Render
		}
	}
	kind := c.auth
	if kind == "" {
		var given []string
		if c.apiKey != "" {
			given = append(given, elastic.AuthAPIKey)
		}
		if c.username != "" || c.password != "" {
			given = append(given, elastic.AuthBasic)
		}
		if c.bearer != "" {
			given = append(given, elastic.AuthBearer)
		}
		switch len(given) {
		case 0:
			kind = elastic.AuthNone
		case 1:
			kind = given[0]
		default:
			return nil, cli.Usagef("credentials for %s auth given at once: give one (or --auth to choose)", strings.Join(given, " and "))
		}
	}
	var err error
	cfg.Auth = elastic.Auth{Kind: kind, Username: c.username}
	switch strings.ToLower(kind) {
	case strings.ToLower(elastic.AuthAPIKey):
		if c.apiKey == "" {
			return nil, cli.Usagef("%s apiKey needs --api-key env:NAME, file:PATH or exec:COMMAND", c.label("auth"))
		}
		cfg.Auth.APIKey, err = c.secretSource(ctx, "api-key", c.apiKey)
	case elastic.AuthBasic:
		if c.username == "" || c.password == "" {
			return nil, cli.Usagef("%s basic needs --username and --password (a reference)", c.label("auth"))
		}
		cfg.Auth.Password, err = c.secretSource(ctx, "password", c.password)
	case elastic.AuthBearer:
		if c.bearer == "" {
			return nil, cli.Usagef("%s bearer needs --bearer env:NAME, file:PATH or exec:COMMAND", c.label("auth"))
		}
		cfg.Auth.Token, err = c.secretSource(ctx, "bearer", c.bearer)
	case elastic.AuthNone:
	default:
		return nil, cli.Usagef("%s %q: apiKey, basic, bearer or none", c.label("auth"), kind)
	}
	if err != nil {
		return nil, err
	}
	// A credential of another kind than the one chosen is a mistake.
	for _, o := range []struct{ flag, kind, v string }{
		{"api-key", elastic.AuthAPIKey, c.apiKey}, {"username", elastic.AuthBasic, c.username},
		{"password", elastic.AuthBasic, c.password}, {"bearer", elastic.AuthBearer, c.bearer},
	} {
		if o.v != "" && !strings.EqualFold(o.kind, kind) {
			return nil, cli.Usagef("%s is for %s auth, but the auth kind is %s", c.label(o.flag), o.kind, kind)
		}
	}
	return elastic.New(cfg)
}

func (c *config) datadogSink(ctx context.Context) (sink.Sink, error) {
	if c.apiKey == "" {
		return nil, cli.Usagef("--kind datadog needs --api-key env:NAME, file:PATH or exec:COMMAND")
	}
	cfg := datadog.Config{
		Site: c.site, URL: c.url, Service: c.service, Source: c.source, Hostname: c.hostname, Gzip: c.gzip,
		CAFile: c.caFile, CertFile: c.certFile, KeyFile: c.keyFile, InsecureSkipVerify: c.insecureSkipVerify,
		AllowInsecureHTTP: c.allowHTTP, Timeout: c.timeout, MaxIdleConns: 2 * c.inflight, Transport: c.transport,
	}
	if c.tags != "" {
		t, err := c.template("tags", c.tags, route.DatadogTags)
		if err != nil {
			return nil, err
		}
		if tags, ok := t.Static(); ok {
			cfg.Tags = tags
		} else {
			cfg.TagsFor = t.Render
		}
	}
	var err error
	if cfg.APIKey, err = c.secretSource(ctx, "api-key", c.apiKey); err != nil {
		return nil, err
	}
	return datadog.New(cfg)
}
