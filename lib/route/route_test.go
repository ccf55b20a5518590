package route

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// ts0 is 2025-11-27T12:00:00.123Z.
const ts0 = 1764244800123

func rec(tenant, kind string) *sink.Record {
	return &sink.Record{Seq: 1, TS: ts0, TenantID: tenant, Kind: kind}
}

func mustParse(t testing.TB, src string, r Rules) *Template {
	t.Helper()
	tp, err := Parse(src, r)
	if err != nil {
		t.Fatalf("Parse(%q, %s): %v", src, r, err)
	}
	return tp
}

func TestRender(t *testing.T) {
	tests := []struct {
		src    string
		rules  Rules
		tenant string
		kind   string
		want   string
	}{
		// The seed page's example, verbatim.
		{"declaragent_${tenant:id}", SplunkIndex, "acme", "tool_call", "declaragent_acme"},
		{"declaragent_${tenant:id}", SplunkIndex, "_system", "", "declaragent__system"},
		{"declaragent_${tenant:id}", SplunkIndex, "", "", "declaragent_"},
		{"declaragent_${tenant:id}", SplunkIndex, "Acme", "", "declaragent_acme-" + h8("Acme")},
		{"declaragent_${tenant:id}", SplunkIndex, "acme.corp", "", "declaragent_acme_corp-" + h8("acme.corp")},
		{"declaragent_${tenant:id}", SplunkIndex, "kvstore", "", "declaragent_kvst_re-" + h8("kvstore")},
		{"audit_kv${tenant:id}", SplunkIndex, "store", "", "audit_kvst_re"},
		{"declaragent_${tenant:id}_${kind}", SplunkIndex, "acme", "tool_call", "declaragent_acme_tool_call"},
		{"declaragent-${tenant:id}", ElasticIndex, "acme", "", "declaragent-acme"},
		{"declaragent-audit-${date:YYYY.MM.DD}", ElasticIndex, "acme", "", "declaragent-audit-2025.11.27"},
		{"a-${date:YYYYMM}-${tenant:id}", ElasticIndex, "t1", "", "a-202511-t1"},
		{"declaragent-${tenant:id}", ElasticIndex, "Ünïcode", "", "declaragent-_n_code-" + h8("Ünïcode")},
		{"declaragent-audit", ElasticIndex, "acme", "", "declaragent-audit"},
		{"declaragent.audit-${tenant:id}", KafkaTopic, "acme", "", "declaragent.audit-acme"},
		{"Audit_${tenant:id}", KafkaTopic, "eu/acme.corp", "", "Audit_eu_acme_corp-" + h8("eu/acme.corp")},
		{"audit-${tenant:id}", KafkaTopic, "Acme", "", "audit-acme-" + h8("Acme")},
		{"env:prod, tenant:${tenant:id} ,kind:${kind},", DatadogTags, "acme", "tool_call", "env:prod,tenant:acme,kind:tool_call"},
		{"tenant:${tenant:id}", DatadogTags, "a,b:c", "", "tenant:a_b_c-" + h8("a,b:c")},
		{"tenant:${tenant:id}", DatadogTags, "eu/acme.corp", "", "tenant:eu_acme_corp-" + h8("eu/acme.corp")},
		{"tenant:${tenant:id}", DatadogTags, "acme-eu_1", "", "tenant:acme-eu_1"},
		{"day:${date:YYYY-MM-DD}", DatadogTags, "", "", "day:2025-11-27"},
	}
	for _, tt := range tests {
		tp := mustParse(t, tt.src, tt.rules)
		got := tp.Render(rec(tt.tenant, tt.kind))
		if got != tt.want {
			t.Errorf("%s %q with tenant %q kind %q = %q, want %q", tt.rules, tt.src, tt.tenant, tt.kind, got, tt.want)
		}
		if err := Check(tt.rules, got); err != nil {
			t.Errorf("%q: rendered %q is invalid: %v", tt.src, got, err)
		}
		if again := tp.Render(rec(tt.tenant, tt.kind)); again != got {
			t.Errorf("cached render %q != %q", again, got)
		}
	}
}

// h8 is the expected hash suffix of a changed value, computed here
// independently of appendValue.
func h8(v string) string {
	sum := sha256.Sum256([]byte(v))
	return fmt.Sprintf("%x", sum[:4])
}

// TestInjection: tenant ids that try to leave the name (a path, a JSON
// string, a bulk action line, a tag list) come out as one plain name.
func TestInjection(t *testing.T) {
	evil := []string{
		"x/../_bulk", `a","_id":"b`, "a\"}}\n{\"delete\":{\"_index\":\"x\"}}", "../../etc/passwd", "a b", "a\\b",
		"a\x00b", "\u2028", "%2e%2e%2f_bulk", "?refresh=true", "#frag", "a*", "<x>", "x|y", "a,b", "a:b", "..", ".", "-x", "+x", "_x",
		"${tenant:id}", strings.Repeat("A", 1000),
	}
	for _, rules := range []Rules{ElasticIndex, SplunkIndex, DatadogTags} {
		src := map[Rules]string{ElasticIndex: "declaragent-${tenant:id}", SplunkIndex: "declaragent_${tenant:id}", DatadogTags: "env:prod,tenant:${tenant:id}"}[rules]
		tp := mustParse(t, src, rules)
		seen := map[string]string{}
		for _, e := range evil {
			name := tp.Render(rec(e, "k"))
			if err := Check(rules, name); err != nil {
				t.Errorf("%s: tenant %q gave invalid %q: %v", rules, e, name, err)
			}
			if strings.ContainsAny(name, "\"\\/\n\x00 ?#*<>|") || strings.Contains(name, "..") {
				t.Errorf("%s: tenant %q leaked into %q", rules, e, name)
			}
			if rules == DatadogTags && strings.Count(name, ",") != 1 {
				t.Errorf("tenant %q added a tag: %q", e, name)
			}
			if prev, dup := seen[name]; dup {
				t.Errorf("%s: tenants %q and %q share %q", rules, prev, e, name)
			}
			seen[name] = e
		}
	}
}

func TestLengthLimits(t *testing.T) {
	for _, c := range []struct {
		src   string
		rules Rules
		limit int
	}{
		{"declaragent_${tenant:id}", SplunkIndex, MaxSplunk},
		{"declaragent-${tenant:id}-${kind}-${date:YYYY.MM.DD}", ElasticIndex, MaxElastic},
		{"tenant:${tenant:id},k:${kind}", DatadogTags, MaxTag},
	} {
		tp := mustParse(t, c.src, c.rules)
		for _, n := range []int{1, 50, 67, 68, 69, 100, 300, 5000} {
			long := strings.Repeat("a", n)
			name := tp.Render(rec(long, long))
			for _, seg := range strings.Split(name, ",") {
				if len(seg) > c.limit {
					t.Errorf("%s: %d-byte values gave a %d-byte name, over %d: %q", c.rules, n, len(seg), c.limit, seg)
				}
			}
			if err := Check(c.rules, name); err != nil {
				t.Errorf("%q invalid: %v", name, err)
			}
		}
		a, b := tp.Render(rec(strings.Repeat("a", 300)+"1", "k")), tp.Render(rec(strings.Repeat("a", 300)+"2", "k"))
		if a == b {
			t.Errorf("%s: long tenants that differ at the end share %q", c.rules, a)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		src   string
		rules Rules
		want  string
	}{
		{"", ElasticIndex, "empty"},
		{"${tenant:id}", ElasticIndex, "begin with literal"},
		{"${tenant:id}-audit", SplunkIndex, "begin with literal"},
		{"declaragent_${tenant}", SplunkIndex, "unknown placeholder ${tenant}"},
		{"declaragent_${secret:env:X}", SplunkIndex, "unknown placeholder"},
		{"declaragent_${tenant:id", SplunkIndex, "without a closing"},
		{"declaragent_${date:}", SplunkIndex, "YYYY"},
		{"Declaragent-${tenant:id}", ElasticIndex, "lowercase"},
		{"_audit-${tenant:id}", ElasticIndex, "may not start"},
		{".audit-${tenant:id}", ElasticIndex, "hidden"},
		{"audit/${tenant:id}", ElasticIndex, `may not contain '/'`},
		{"audit ${tenant:id}", ElasticIndex, "may not contain"},
		{"audit$x", ElasticIndex, "may not contain"},
		{"audit.${tenant:id}", SplunkIndex, "holds only"},
		{"audit_${date:YYYY.MM.DD}", SplunkIndex, "holds only"},
		{"-audit", SplunkIndex, "must start"},
		{"my_kvstore_${tenant:id}", SplunkIndex, "kvstore"},
		{strings.Repeat("a", 81), SplunkIndex, "over the limit"},
		{strings.Repeat("a", 70) + "${tenant:id}", SplunkIndex, "leaves 10 bytes"},
		{"${kind}:x", DatadogTags, "begin with literal"},
		{"env:prod,1abc", DatadogTags, "must start with a letter"},
		{"env:prod,t:${tenant:id} x", DatadogTags, "not ' '"},
		{" , ,", DatadogTags, "empty"},
		{"_audit-${tenant:id}", KafkaTopic, "must start with a letter or a digit"},
		{".audit", KafkaTopic, "must start with a letter or a digit"},
		{"audit/${tenant:id}", KafkaTopic, "holds only letters, digits, . _ and -"},
		{"audit:x", KafkaTopic, "holds only"},
		{strings.Repeat("a", 250), KafkaTopic, "over the limit of 249"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.src, tt.rules)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q, %s) = %v, want an error with %q", tt.src, tt.rules, err, tt.want)
		}
	}
}

func TestStatic(t *testing.T) {
	tp := mustParse(t, "declaragent-audit", ElasticIndex)
	if name, ok := tp.Static(); !ok || name != "declaragent-audit" {
		t.Fatalf("Static = %q, %v", name, ok)
	}
	if _, ok := mustParse(t, "declaragent-${kind}", ElasticIndex).Static(); ok {
		t.Fatal("a template with a placeholder is static")
	}
}

func TestDates(t *testing.T) {
	tp := mustParse(t, "a-${date:YYYY.MM.DD}", ElasticIndex)
	for _, c := range []struct {
		ts   int64
		want string
	}{
		{0, "a-1970.01.01"}, {-5, "a-1970.01.01"}, {86399999, "a-1970.01.01"}, {86400000, "a-1970.01.02"},
		{ts0, "a-2025.11.27"}, {1 << 62, "a-9999.12.31"},
	} {
		if got := tp.Render(&sink.Record{TS: c.ts}); got != c.want {
			t.Errorf("ts %d: %q, want %q", c.ts, got, c.want)
		}
	}
}

// TestRenderNoAlloc: a tenant seen before costs no allocation.
func TestRenderNoAlloc(t *testing.T) {
	tp := mustParse(t, "declaragent-${tenant:id}-${kind}-${date:YYYY.MM.DD}", ElasticIndex)
	r := rec("acme", "tool_call")
	tp.Render(r)
	if n := testing.AllocsPerRun(1000, func() { tp.Render(r) }); n != 0 {
		t.Fatalf("%v allocations per cached Render", n)
	}
}

func TestConcurrent(t *testing.T) {
	tp := mustParse(t, "declaragent_${tenant:id}", SplunkIndex)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 * maxCache / 2 {
				tenant := fmt.Sprintf("t%d", (i*7+g)%(maxCache+100))
				if got := tp.Render(rec(tenant, "")); got != "declaragent_"+tenant {
					t.Errorf("%q", got)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func FuzzRender(f *testing.F) {
	for _, s := range []string{"acme", "x/../_bulk", `a","_id":"b`, "Ü", "kvstore", "a,b", ""} {
		f.Add(s, "tool_call", int64(ts0))
	}
	tps := []*Template{
		mustParse(f, "declaragent_${tenant:id}_${kind}", SplunkIndex),
		mustParse(f, "kv${tenant:id}${kind}", SplunkIndex),
		mustParse(f, "declaragent-${tenant:id}-${date:YYYY.MM.DD}", ElasticIndex),
		mustParse(f, "env:prod,tenant:${tenant:id},kind:${kind}", DatadogTags),
	}
	f.Fuzz(func(t *testing.T, tenant, kind string, ts int64) {
		for _, tp := range tps {
			name := tp.Render(&sink.Record{TenantID: tenant, Kind: kind, TS: ts})
			if err := Check(tp.rules, name); err != nil {
				t.Fatalf("%s: tenant %q kind %q: %q invalid: %v", tp.src, tenant, kind, name, err)
			}
		}
	})
}

func BenchmarkRenderCached(b *testing.B) {
	tp := mustParse(b, "declaragent_${tenant:id}", SplunkIndex)
	recs := []*sink.Record{rec("acme", "k"), rec("globex", "k"), rec("_system", "k"), rec("initech", "k")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tp.Render(recs[i&3])
	}
}
