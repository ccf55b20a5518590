package sink

import (
	"context"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
)

func decls() []*Decl {
	return []*Decl{
		{Kind: "a", Flags: append([]Flag{{Name: "url", Help: "A's URL"}, FlagGzip, {Name: "only-a", Type: Int, Default: "3", Help: "a thing"}}, HTTPFlags...)},
		{Kind: "b", Flags: append([]Flag{{Name: "url", Help: "B's URL"}, FlagGzip}, HTTPFlags...)},
		{Kind: "c", Flags: []Flag{{Name: "gzip", Type: Bool, Default: "true", Help: "compress the output"}}},
	}
}

func TestTableJoinsFlagsPerKind(t *testing.T) {
	got := map[string]TableFlag{}
	var order []string
	for _, f := range Table(decls()) {
		got[f.Name] = f
		order = append(order, f.Name)
	}
	if strings.Join(order[:3], " ") != "url gzip only-a" {
		t.Errorf("order %q: want the order first declared", order)
	}
	for _, tc := range []struct{ name, kinds, help string }{
		{"url", "a,b", "a: A's URL; b: B's URL"},
		{"gzip", "a,b,c", "a, b: compress request bodies; c: compress the output"},
		{"only-a", "a", "a: a thing"},
		{"timeout", "a,b", "a, b: per-request timeout"},
	} {
		f := got[tc.name]
		if strings.Join(f.Kinds, ",") != tc.kinds || f.Help != tc.help {
			t.Errorf("--%s: kinds %q help %q, want %q %q", tc.name, f.Kinds, f.Help, tc.kinds, tc.help)
		}
	}
	// A help every kind shares is given alone.
	same := []*Decl{{Kind: "x", Flags: []Flag{FlagCAFile}}, {Kind: "y", Flags: []Flag{FlagCAFile}}}
	if h := Table(same)[0].Help; h != FlagCAFile.Help {
		t.Errorf("shared help %q", h)
	}
}

func TestTablePanicsOnDisagreeingDeclarations(t *testing.T) {
	for _, f := range []Flag{{Name: "url", Type: Bool}, {Name: "url", Default: "x"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v against a string --url with no default: no panic", f)
				}
			}()
			Table([]*Decl{{Kind: "a", Flags: []Flag{{Name: "url"}}}, {Kind: "b", Flags: []Flag{f}}})
		}()
	}
}

func TestValues(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	v := Bind(fs, decls())
	if err := fs.Parse([]string{"--url", "https://x", "--gzip=false", "--only-a", "7", "--timeout", "5s"}); err != nil {
		t.Fatal(err)
	}
	v.Parsed(fs)
	if v.String("url") != "https://x" || v.Bool("gzip") || v.Int("only-a") != 7 || v.Duration("timeout") != 5*time.Second ||
		v.Duration("secret-timeout") != 10*time.Second || v.Bool("insecure-skip-verify") {
		t.Errorf("values: url %q gzip %v only-a %d timeout %v secret-timeout %v",
			v.String("url"), v.Bool("gzip"), v.Int("only-a"), v.Duration("timeout"), v.Duration("secret-timeout"))
	}
	if !v.Given("url") || v.Given("ca-file") {
		t.Errorf("Given: url %v ca-file %v", v.Given("url"), v.Given("ca-file"))
	}
	// agent.yaml: a given flag wins; a value taken is labelled with its origin.
	if err := v.Take("url", "https://agent", "agent.yaml: url (line 3)"); err != nil || v.String("url") != "https://x" || v.Label("url") != "--url" {
		t.Errorf("Take over a given flag: %v %q %q", err, v.String("url"), v.Label("url"))
	}
	if err := v.Take("ca-file", "/ca.pem", "agent.yaml: ca (line 4)"); err != nil || v.String("ca-file") != "/ca.pem" || v.Label("ca-file") != "agent.yaml: ca (line 4)" {
		t.Errorf("Take: %v %q %q", err, v.String("ca-file"), v.Label("ca-file"))
	}
	if err := v.Take("timeout", "soon", "agent.yaml: t (line 5)"); err != nil || v.Duration("timeout") != 5*time.Second {
		t.Errorf("Take over a given flag: %v", err)
	}
	if err := v.Take("allow-insecure-http", "maybe", "agent.yaml: n (line 6)"); exitcode.Of(err) != exitcode.Usage || !strings.Contains(err.Error(), "agent.yaml: n (line 6)") {
		t.Errorf("Take of a bad bool: %v", err)
	}
	// A literal secret is refused as a usage error naming the flag.
	v.vals["url"].s = "hunter2"
	if _, err := v.Secret(context.Background(), "url"); exitcode.Of(err) != exitcode.Usage || !strings.HasPrefix(err.Error(), "--url: ") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Secret of a literal: %v", err)
	}
	h := v.HTTP()
	if h.URL != "hunter2" || h.Timeout != 5*time.Second || h.CAFile != "/ca.pem" || h.Gzip {
		t.Errorf("HTTP %+v", h)
	}
}

func TestKinds(t *testing.T) {
	if got := Kinds(decls()); got != "a, b or c" {
		t.Errorf("Kinds %q", got)
	}
	if Lookup(decls(), "b") == nil || Lookup(decls(), "z") != nil {
		t.Error("Lookup")
	}
}
