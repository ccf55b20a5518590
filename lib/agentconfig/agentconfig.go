// Package agentconfig reads the audit.export block of a Declaragent
// agent.yaml, exactly as Declaragent's documentation writes it, so that
// audit-ship can be pointed at the file an agent already has:
//
//	audit:
//	  export:
//	    kind: splunk                     # splunk | elastic | datadog
//	    hecUrl: https://…/services/collector/event
//	    token: env:SPLUNK_HEC_TOKEN
//	    index: declaragent_prod          # or a template: "declaragent_${tenant:id}"
//	    sourcetype: declaragent:audit
//	    batchSize: 200
//	    intervalMs: 5000
//
//	    kind: elastic
//	    baseUrl: https://es.acme.internal:9200
//	    index: declaragent-audit
//	    auth: {kind: apiKey, apiKey: env:ELASTIC_API_KEY}   # or basic (username, password) or bearer (token)
//
//	    kind: datadog
//	    apiKey: env:DATADOG_API_KEY
//	    site: datadoghq.eu
//	    service: declaragent
//	    source: declaragent:audit
//	    tags: env:prod,team:platform    # or a YAML list of tags
//
// Keys are checked: a key this package does not know, or one that belongs
// to another kind, is an error naming its line (a misspelt hecURL must not
// silently leave the URL unset). Everything outside audit.export is
// ignored. batchSize and intervalMs are accepted for every kind.
//
// Secrets (token, apiKey, auth.apiKey, auth.password, auth.token) must be
// references: env:NAME, file:PATH, exec:COMMAND, or Declaragent's
// ${secret:…} spelling of them (lib/secret). A literal secret is refused
// here, with its line but without its value, as it is on the command line.
package agentconfig

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/auditpipe/auditpipe/lib/secret"
)

// MaxSize is the largest agent.yaml Load reads.
const MaxSize = 4 << 20

// Export is the audit.export block. Fields that were absent are empty; Set
// tells them from an explicit empty value.
type Export struct {
	Kind string

	// splunk
	HECURL     string
	Token      string
	Sourcetype string

	// splunk, elastic
	Index string

	// elastic
	BaseURL string
	Auth    Auth

	// datadog
	APIKey  string
	Site    string
	Service string
	Tags    string

	// splunk, datadog
	Source string

	// every kind
	BatchSize  int
	IntervalMs int

	// Set holds the key paths present, e.g. "hecUrl", "auth.kind".
	Set map[string]bool
	// Lines gives the line of each key path, for messages.
	Lines map[string]int
}

// Auth is audit.export.auth (elastic).
type Auth struct {
	Kind     string // apiKey, basic or bearer
	APIKey   string
	Username string
	Password string
	Token    string
}

// Where names a key path for a message: "audit.export.token (line 7)".
func (e *Export) Where(path string) string {
	if n := e.Lines[path]; n > 0 {
		return fmt.Sprintf("audit.export.%s (line %d)", path, n)
	}
	return "audit.export." + path
}

// keys lists the keys of audit.export and the kinds they belong to.
var keys = map[string][]string{
	"kind":       {"splunk", "elastic", "datadog"},
	"batchSize":  {"splunk", "elastic", "datadog"},
	"intervalMs": {"splunk", "elastic", "datadog"},
	"hecUrl":     {"splunk"},
	"token":      {"splunk"},
	"sourcetype": {"splunk"},
	"index":      {"splunk", "elastic"},
	"baseUrl":    {"elastic"},
	"auth":       {"elastic"},
	"apiKey":     {"datadog"},
	"site":       {"datadog"},
	"service":    {"datadog"},
	"tags":       {"datadog"},
	"source":     {"splunk", "datadog"},
}

var authKeys = map[string]bool{"kind": true, "apiKey": true, "username": true, "password": true, "token": true}

// Load reads path and returns its audit.export block.
func Load(path string) (*Export, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read agent config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read agent config %s: %w", path, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("agent config %s is over %d bytes", path, MaxSize)
	}
	e, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	return e, nil
}

// Parse parses an agent.yaml document and returns its audit.export block.
func Parse(data []byte) (*Export, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("empty document: no audit.export block")
	}
	root := doc.Content[0]
	audit := member(root, "audit")
	if audit == nil {
		return nil, errors.New("no audit: block (audit.export is what audit-ship reads)")
	}
	ex := member(audit, "export")
	if ex == nil {
		return nil, fmt.Errorf("line %d: audit: has no export: block", audit.Line)
	}
	if ex.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: audit.export is not a mapping", ex.Line)
	}
	e := &Export{Set: map[string]bool{}, Lines: map[string]int{}}
	kindNode := member(ex, "kind")
	if kindNode == nil {
		return nil, fmt.Errorf("line %d: audit.export has no kind (splunk, elastic or datadog)", ex.Line)
	}
	if err := str(kindNode, &e.Kind); err != nil {
		return nil, fmt.Errorf("line %d: audit.export.kind: %w", kindNode.Line, err)
	}
	switch e.Kind {
	case "splunk", "elastic", "datadog":
	default:
		return nil, fmt.Errorf("line %d: audit.export.kind %q: audit-ship reads splunk, elastic or datadog", kindNode.Line, e.Kind)
	}
	for i := 0; i+1 < len(ex.Content); i += 2 {
		k, v := ex.Content[i], ex.Content[i+1]
		name := k.Value
		kinds, known := keys[name]
		switch {
		case !known:
			return nil, fmt.Errorf("line %d: unknown key audit.export.%s (known: %s)", k.Line, name, knownKeys())
		case !contains(kinds, e.Kind):
			return nil, fmt.Errorf("line %d: audit.export.%s is for kind %s, not %s", k.Line, name, strings.Join(kinds, "/"), e.Kind)
		case e.Set[name]:
			return nil, fmt.Errorf("line %d: audit.export.%s given twice", k.Line, name)
		}
		e.Set[name], e.Lines[name] = true, k.Line
		var err error
		switch name {
		case "kind":
		case "hecUrl":
			err = str(v, &e.HECURL)
		case "token":
			err = str(v, &e.Token)
		case "sourcetype":
			err = str(v, &e.Sourcetype)
		case "index":
			err = str(v, &e.Index)
		case "baseUrl":
			err = str(v, &e.BaseURL)
		case "apiKey":
			err = str(v, &e.APIKey)
		case "site":
			err = str(v, &e.Site)
		case "service":
			err = str(v, &e.Service)
		case "source":
			err = str(v, &e.Source)
		case "tags":
			err = tags(v, &e.Tags)
		case "batchSize":
			err = positive(v, &e.BatchSize)
		case "intervalMs":
			err = positive(v, &e.IntervalMs)
		case "auth":
			err = e.auth(v)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: audit.export.%s: %w", v.Line, name, err)
		}
	}
	for _, p := range []struct {
		path string
		v    string
	}{{"token", e.Token}, {"apiKey", e.APIKey}, {"auth.apiKey", e.Auth.APIKey}, {"auth.password", e.Auth.Password}, {"auth.token", e.Auth.Token}} {
		if e.Set[p.path] && !secret.IsReference(p.v) {
			return nil, fmt.Errorf("%s: a literal secret is refused (not shown): agent.yaml is read by many and lands in version control; "+
				"write a reference: env:NAME, file:PATH, exec:COMMAND or ${secret:env:NAME}", e.Where(p.path))
		}
	}
	return e, nil
}

func (e *Export) auth(v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return errors.New("not a mapping (kind: apiKey|basic|bearer, and its credentials)")
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		path := "auth." + k.Value
		if !authKeys[k.Value] {
			return fmt.Errorf("line %d: unknown key %s (known: kind, apiKey, username, password, token)", k.Line, path)
		}
		if e.Set[path] {
			return fmt.Errorf("line %d: %s given twice", k.Line, path)
		}
		e.Set[path], e.Lines[path] = true, k.Line
		var dst *string
		switch k.Value {
		case "kind":
			dst = &e.Auth.Kind
		case "apiKey":
			dst = &e.Auth.APIKey
		case "username":
			dst = &e.Auth.Username
		case "password":
			dst = &e.Auth.Password
		case "token":
			dst = &e.Auth.Token
		}
		if err := str(val, dst); err != nil {
			return fmt.Errorf("line %d: %s: %w", val.Line, path, err)
		}
	}
	switch e.Auth.Kind {
	case "apiKey", "basic", "bearer", "none":
	case "":
		return errors.New("no kind (apiKey, basic or bearer)")
	default:
		return fmt.Errorf("kind %q: want apiKey, basic or bearer", e.Auth.Kind)
	}
	return nil
}

// member returns the value of key in mapping n, or nil.
func member(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var found *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			found = n.Content[i+1]
		}
	}
	return found
}

func str(n *yaml.Node, dst *string) error {
	if n.Kind != yaml.ScalarNode {
		return errors.New("not a single value")
	}
	if n.Tag == "!!null" {
		*dst = ""
		return nil
	}
	*dst = n.Value
	return nil
}

func positive(n *yaml.Node, dst *int) error {
	var v int
	if n.Kind != yaml.ScalarNode || n.Decode(&v) != nil {
		return fmt.Errorf("%q is not a whole number", n.Value)
	}
	if v <= 0 {
		return fmt.Errorf("%d: must be positive", v)
	}
	*dst = v
	return nil
}

// tags takes "k:v,k:v" or a list of "k:v".
func tags(n *yaml.Node, dst *string) error {
	if n.Kind == yaml.SequenceNode {
		var parts []string
		for _, c := range n.Content {
			var s string
			if err := str(c, &s); err != nil {
				return err
			}
			parts = append(parts, s)
		}
		*dst = strings.Join(parts, ",")
		return nil
	}
	return str(n, dst)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func knownKeys() string {
	return "kind, hecUrl, token, index, sourcetype, source, baseUrl, auth, apiKey, site, service, tags, batchSize, intervalMs"
}

// Value returns the value of a key path ("hecUrl", "auth.apiKey"), as a
// flag takes it (tags joined with commas), or "" if the path is not a
// string-valued key.
func (e *Export) Value(path string) string {
	switch path {
	case "hecUrl":
		return e.HECURL
	case "token":
		return e.Token
	case "sourcetype":
		return e.Sourcetype
	case "index":
		return e.Index
	case "baseUrl":
		return e.BaseURL
	case "apiKey":
		return e.APIKey
	case "site":
		return e.Site
	case "service":
		return e.Service
	case "source":
		return e.Source
	case "tags":
		return e.Tags
	case "auth.kind":
		return e.Auth.Kind
	case "auth.apiKey":
		return e.Auth.APIKey
	case "auth.username":
		return e.Auth.Username
	case "auth.password":
		return e.Auth.Password
	case "auth.token":
		return e.Auth.Token
	}
	return ""
}
