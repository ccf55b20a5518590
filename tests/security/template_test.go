package security

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/fake/ddfake"
	"github.com/auditpipe/auditpipe/internal/fake/esfake"
	"github.com/auditpipe/auditpipe/internal/fake/hecfake"
)

// Tenant ids chosen to break out of an index name, a URL path, a bulk
// action line or a tag list, or to land in another tenant's index.
var hostileTenants = []string{
	"acme", "ACME", "acme ", "../../_bulk", "x/../y", `a"b`, "x,y", "t\nx", "t\r\n{\"create\":{}}",
	`{"create":{"_index":"victim"}}`, "-lead", "_all", "+plus", "évil", "a b", "a_b", "tag:evil,env:prod",
	"*", "?q=1", "#frag", "acme\u0000", strings.Repeat("long", 80),
}

func tenantOf(t *testing.T, line string) string {
	t.Helper()
	var r struct {
		TenantID string `json:"tenantId"`
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("record line: %v", err)
	}
	return r.TenantID
}

// injective checks that distinct tenants got distinct names and one
// tenant always the same name.
func injective(t *testing.T, what string, byTenant map[string]map[string]bool) {
	t.Helper()
	owner := map[string]string{}
	for tenant, names := range byTenant {
		if len(names) != 1 {
			t.Errorf("tenant %q went to %d %ss: %v", tenant, len(names), what, names)
		}
		for n := range names {
			if o, ok := owner[n]; ok && o != tenant {
				t.Errorf("tenants %q and %q share the %s %q", o, tenant, what, n)
			}
			owner[n] = tenant
		}
	}
}

// An index template cannot inject into a URL path, a bulk action line or
// a tag list, nor put two tenants in one index, whatever the tenant id:
// tested through the audit-ship binary with --index 'x_${tenant:id}'
// (Elasticsearch, Splunk) and --tags 'tenant:${tenant:id}' (Datadog).
func TestTemplateCannotInject(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	_, recs := records(t, dir, 0, hostileTenants...)
	lines := strings.Split(strings.TrimSuffix(recs, "\n"), "\n")
	if len(lines) != len(hostileTenants) {
		t.Fatalf("%d records for %d tenants", len(lines), len(hostileTenants))
	}
	env := []string{"SEC_TEST_CRED=" + secret}
	common := []string{"--acks", "-", "--quiet", "--quarantine", dir + "/q.ndjson"}

	t.Run("elastic", func(t *testing.T) {
		es := esfake.New(esfake.Options{APIKeys: []string{secret}})
		defer es.Close()
		r := exe(t, env, recs, time.Minute, "audit-ship", append([]string{"--kind", "elastic", "--url", es.URL,
			"--api-key", "env:SEC_TEST_CRED", "--index", "x_${tenant:id}"}, common...)...)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		validIndex := regexp.MustCompile(`^x_[a-z0-9_.-]+$`)
		for _, req := range es.Requests() {
			if req.Method != "POST" {
				continue
			}
			if req.Path != "/_bulk" {
				t.Errorf("bulk request to path %q: the index must not be in the URL", req.Path)
			}
			if strings.Contains(req.Query, "tenant") || strings.Contains(req.Query, "x_") {
				t.Errorf("query %q carries routing", req.Query)
			}
			body := strings.TrimSuffix(string(req.Body), "\n")
			bl := strings.Split(body, "\n")
			if len(bl)%2 != 0 {
				t.Fatalf("bulk body of %d lines: not action/document pairs", len(bl))
			}
			for i := 0; i < len(bl); i += 2 {
				var act map[string]map[string]any
				if err := json.Unmarshal([]byte(bl[i]), &act); err != nil || len(act) != 1 || act["create"] == nil {
					t.Fatalf("line %d is not one create action: %q", i+1, bl[i])
				}
				if len(act["create"]) != 2 {
					t.Errorf("action line with extra members: %q", bl[i])
				}
				idx, _ := act["create"]["_index"].(string)
				if !validIndex.MatchString(idx) || len(idx) > 255 {
					t.Errorf("index %q is not a safe Elasticsearch index name", idx)
				}
			}
		}
		docs := es.Docs()
		if len(docs) != len(lines) {
			t.Fatalf("%d documents stored for %d records: something was injected or lost", len(docs), len(lines))
		}
		byTenant := map[string]map[string]bool{}
		want := map[string]bool{}
		for _, l := range lines {
			want[l] = true
		}
		for _, d := range docs {
			var doc struct {
				Message string `json:"message"`
			}
			json.Unmarshal([]byte(d.Source), &doc)
			if !want[doc.Message] {
				t.Errorf("stored document is not one of the records: %.200q", d.Source)
				continue
			}
			tn := tenantOf(t, doc.Message)
			if byTenant[tn] == nil {
				byTenant[tn] = map[string]bool{}
			}
			byTenant[tn][d.Index] = true
		}
		injective(t, "index", byTenant)
	})

	t.Run("splunk", func(t *testing.T) {
		hec := hecfake.New(hecfake.Options{Tokens: []string{secret}})
		defer hec.Close()
		r := exe(t, env, recs, time.Minute, "audit-ship", append([]string{"--kind", "splunk", "--url", hec.URL,
			"--token", "env:SEC_TEST_CRED", "--index", "x_${tenant:id}"}, common...)...)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		evs := hec.Events()
		if len(evs) != len(lines) {
			t.Fatalf("%d events for %d records", len(evs), len(lines))
		}
		valid := regexp.MustCompile(`^x_[a-z0-9_-]+$`)
		byTenant := map[string]map[string]bool{}
		for _, e := range evs {
			if !valid.MatchString(e.Index) {
				t.Errorf("index %q is not a safe Splunk index name", e.Index)
			}
			tn := tenantOf(t, e.Event)
			if byTenant[tn] == nil {
				byTenant[tn] = map[string]bool{}
			}
			byTenant[tn][e.Index] = true
		}
		injective(t, "index", byTenant)
	})

	t.Run("datadog", func(t *testing.T) {
		dd := ddfake.New(ddfake.Options{APIKeys: []string{secret}})
		defer dd.Close()
		r := exe(t, env, recs, time.Minute, "audit-ship", append([]string{"--kind", "datadog", "--url", dd.URL,
			"--api-key", "env:SEC_TEST_CRED", "--tags", "env:test,tenant:${tenant:id}"}, common...)...)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		logs := dd.Logs()
		if len(logs) != len(lines) {
			t.Fatalf("%d logs for %d records", len(logs), len(lines))
		}
		byTenant := map[string]map[string]bool{}
		for _, l := range logs {
			tags, _ := l.Attrs["ddtags"].(string)
			parts := strings.Split(tags, ",")
			if len(parts) != 2 || parts[0] != "env:test" || !strings.HasPrefix(parts[1], "tenant:") ||
				strings.ContainsAny(parts[1], "\n\r ") || strings.Count(parts[1], ":") != 1 {
				t.Errorf("ddtags %q: the tenant escaped its tag", tags)
			}
			tn := tenantOf(t, l.Message)
			if byTenant[tn] == nil {
				byTenant[tn] = map[string]bool{}
			}
			byTenant[tn][tags] = true
		}
		injective(t, "tag list", byTenant)
	})
}
