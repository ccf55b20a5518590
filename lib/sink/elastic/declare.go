package elastic

import (
	"context"
	"strings"

	"github.com/auditpipe/auditpipe/lib/route"
	"github.com/auditpipe/auditpipe/lib/sink"
)

// Decl declares the elastic sink to audit-ship and audit-batch.
var Decl = &sink.Decl{
	Kind: "elastic",
	Flags: append([]sink.Flag{
		{Name: "url", Help: "cluster base URL"},
		sink.FlagGzip,
		{Name: "index", Help: "index, or a template such as 'declaragent_${tenant:id}' (placeholders ${tenant:id}, ${kind}, ${date:YYYY.MM.DD}) (default " + DefaultIndex + ")"},
		{Name: "api-key", Help: "encoded API key (auth apiKey), a reference: env:NAME, file:PATH or exec:COMMAND"},
		{Name: "auth", Help: "apiKey, basic, bearer or none (default: the kind of the credential flag given: --api-key, --username/--password or --bearer)"},
		{Name: "username", Help: "user name for basic auth (not a secret)"},
		{Name: "password", Help: "password reference for basic auth"},
		{Name: "bearer", Help: "bearer token reference (OAuth2 or service account token)"},
		{Name: "id-field", Default: IDRecordHash, Help: "document _id: recordHash (idempotent across database resets) or seq (a 409 is then checked with _mget: needs the read privilege)"},
		{Name: "doc-shape", Default: ShapeMessage, Help: "message (the record line as the string field message, plus searchable fields) or line (the record line itself as the document)"},
	}, sink.HTTPFlags...),
	Agent: []sink.AgentKey{
		{Key: "baseUrl", Flag: "url"}, {Key: "index", Flag: "index"},
		{Key: "auth.kind", Flag: "auth", Unit: "auth"}, {Key: "auth.apiKey", Flag: "api-key", Unit: "auth"},
		{Key: "auth.username", Flag: "username", Unit: "auth"}, {Key: "auth.password", Flag: "password", Unit: "auth"},
		{Key: "auth.token", Flag: "bearer", Unit: "auth"},
	},
	Batch:  sink.Batch{Records: 10_000, Bytes: 5_000_000},
	Limits: sink.Limits{Bytes: 100 << 20, Why: "Elasticsearch's default http.max_content_length of 100 MiB"},
	New:    declared,
}

func declared(ctx context.Context, v *sink.Values) (sink.Sink, error) {
	if v.String("url") == "" {
		return nil, sink.Usagef("--kind elastic needs --url (the cluster's base URL, e.g. https://es.example.com:9200)")
	}
	h := v.HTTP()
	cfg := Config{
		URL: h.URL, Gzip: h.Gzip, IDField: v.String("id-field"), DocShape: v.String("doc-shape"),
		CAFile: h.CAFile, CertFile: h.CertFile, KeyFile: h.KeyFile, InsecureSkipVerify: h.InsecureSkipVerify,
		AllowInsecureHTTP: h.AllowHTTP, Timeout: h.Timeout, MaxIdleConns: h.MaxIdleConns, Transport: h.Transport,
	}
	if idx := v.String("index"); idx != "" {
		t, err := route.Parse(idx, route.ElasticIndex)
		if err != nil {
			return nil, v.Usage("index", err)
		}
		if name, ok := t.Static(); ok {
			cfg.Index = name
		} else {
			cfg.IndexFor = t.Render
		}
	}
	apiKey, username, password, bearer := v.String("api-key"), v.String("username"), v.String("password"), v.String("bearer")
	kind := v.String("auth")
	if kind == "" {
		var given []string
		if apiKey != "" {
			given = append(given, AuthAPIKey)
		}
		if username != "" || password != "" {
			given = append(given, AuthBasic)
		}
		if bearer != "" {
			given = append(given, AuthBearer)
		}
		switch len(given) {
		case 0:
			kind = AuthNone
		case 1:
			kind = given[0]
		default:
			return nil, sink.Usagef("credentials for %s auth given at once: give one (or --auth to choose)", strings.Join(given, " and "))
		}
	}
	var err error
	cfg.Auth = Auth{Kind: kind, Username: username}
	switch strings.ToLower(kind) {
	case strings.ToLower(AuthAPIKey):
		if apiKey == "" {
			return nil, sink.Usagef("%s apiKey needs --api-key env:NAME, file:PATH or exec:COMMAND", v.Label("auth"))
		}
		cfg.Auth.APIKey, err = v.Secret(ctx, "api-key")
	case AuthBasic:
		if username == "" || password == "" {
			return nil, sink.Usagef("%s basic needs --username and --password (a reference)", v.Label("auth"))
		}
		cfg.Auth.Password, err = v.Secret(ctx, "password")
	case AuthBearer:
		if bearer == "" {
			return nil, sink.Usagef("%s bearer needs --bearer env:NAME, file:PATH or exec:COMMAND", v.Label("auth"))
		}
		cfg.Auth.Token, err = v.Secret(ctx, "bearer")
	case AuthNone:
	default:
		return nil, sink.Usagef("%s %q: apiKey, basic, bearer or none", v.Label("auth"), kind)
	}
	if err != nil {
		return nil, err
	}
	// A credential of another kind than the one chosen is a mistake.
	for _, o := range []struct{ flag, kind, v string }{
		{"api-key", AuthAPIKey, apiKey}, {"username", AuthBasic, username},
		{"password", AuthBasic, password}, {"bearer", AuthBearer, bearer},
	} {
		if o.v != "" && !strings.EqualFold(o.kind, kind) {
			return nil, sink.Usagef("%s is for %s auth, but the auth kind is %s", v.Label(o.flag), o.kind, kind)
		}
	}
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}
