package sink

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditpipe/auditpipe/lib/exitcode"
	"github.com/auditpipe/auditpipe/lib/secret"
)

// Decl is everything audit-ship and audit-batch know about one sink kind.
// Each sink package declares one (lib/sink/<kind>/declare.go) and
// lib/sink/sinks lists them: audit-ship's --kind values, its flags and
// their per-kind validation, the agent.yaml mapping, --dry-run, audit-batch's
// --siem presets and the flag tables of the docs all derive from it.
type Decl struct {
	Kind  string // the --kind (and --siem) value
	Flags []Flag // the flags that apply to this kind; a flag of another kind is a usage error
	// Agent maps the keys of agent.yaml's audit.export block to flags.
	Agent []AgentKey
	// Batch is audit-batch's default batch (--siem Kind) and Limits the
	// SIEM's hard per-request limits, which no batch may exceed.
	Batch  Batch
	Limits Limits
	// Sequential: one Send at a time (--inflight is forced to 1).
	Sequential bool
	// New builds the sink from the parsed flag values. A missing or bad
	// value is a usage error (exitcode.Usage) naming the flag (v.Label);
	// an error New leaves unclassified is made a usage error too. The
	// sink's Check method is the --check probe.
	New func(ctx context.Context, v *Values) (Sink, error)
	// DryRun, if set, is --dry-run for a sink that makes no HTTP request:
	// it writes to w what the sink would do with recs. Without it, the
	// sink is built with v.Transport capturing its requests, which are
	// printed.
	DryRun func(v *Values, w io.Writer, recs []Record) error
}

// FlagType is the type of a flag's value.
type FlagType uint8

const (
	String FlagType = iota
	Bool
	Duration
	Int
)

// Flag is one command-line flag of a sink. Several sinks may declare the
// same name (the shared HTTP flags): the type and default must then agree;
// the help texts are joined per kind.
type Flag struct {
	Name    string
	Type    FlagType
	Default string // as it would be typed on the command line; "" is the zero value
	Help    string // without the kind: the registry prefixes "splunk: " where kinds differ
}

// AgentKey maps one audit.export key path of agent.yaml ("hecUrl",
// "auth.apiKey") to a flag. The key's value is taken unless the flag was
// given, or (with a Unit) unless any flag of the same Unit was given: a
// unit, such as Elastic's credentials, is replaced as a whole.
type AgentKey struct {
	Key, Flag string
	Unit      string
}

// Batch is a default batch: records and bytes of record lines (no '\n',
// before compression).
type Batch struct {
	Records int
	Bytes   int64
}

// Limits are a SIEM's hard limits (0: none), the byte figures of record
// lines before compression. Why says them in words, for the usage error
// of a batch setting above them.
type Limits struct {
	Records     int   // records per request
	Bytes       int64 // bytes per request
	RecordBytes int64 // bytes per record (the sink refuses a larger one itself)
	Why         string
}

// Shared flags, declared once and listed by every HTTP sink.
var (
	FlagTimeout       = Flag{Name: "timeout", Type: Duration, Default: "30s", Help: "per-request timeout"}
	FlagCAFile        = Flag{Name: "ca-file", Help: "PEM CA bundle to trust instead of the system roots"}
	FlagCertFile      = Flag{Name: "cert-file", Help: "PEM client certificate"}
	FlagKeyFile       = Flag{Name: "key-file", Help: "PEM client key"}
	FlagInsecure      = Flag{Name: "insecure-skip-verify", Type: Bool, Help: "DANGEROUS: do not verify the SIEM's certificate"}
	FlagAllowHTTP     = Flag{Name: "allow-insecure-http", Type: Bool, Help: "allow a plain http:// URL to a non-loopback host (credentials sent unencrypted)"}
	FlagSecretTimeout = Flag{Name: "secret-timeout", Type: Duration, Default: secret.DefaultExecTimeout.String(), Help: "how long an exec: secret reference may run"}
	FlagGzip          = Flag{Name: "gzip", Type: Bool, Default: "true", Help: "compress request bodies"}
)

// HTTPFlags are the flags every HTTP sink takes besides its --url (whose
// help is the sink's own) and --gzip.
var HTTPFlags = []Flag{FlagTimeout, FlagCAFile, FlagCertFile, FlagKeyFile, FlagInsecure, FlagAllowHTTP, FlagSecretTimeout}

// Conn is how an HTTP sink connects: every HTTP sink's Config embeds it,
// so its fields are written and documented once.
type Conn struct {
	// CAFile is a PEM bundle of the CAs to trust instead of the system
	// roots. CertFile and KeyFile are a PEM client certificate and key
	// (both or neither).
	CAFile, CertFile, KeyFile string
	// InsecureSkipVerify turns off verification of the server certificate.
	// DANGEROUS: anyone on the path can then read the credential and the
	// audit log, and forge answers. For a lab only; use CAFile instead.
	InsecureSkipVerify bool
	// AllowInsecureHTTP allows a plain http:// URL to a non-loopback host,
	// sending the credential and the audit log unencrypted.
	AllowInsecureHTTP bool
	// Timeout bounds each HTTP request, from sending to reading the
	// answer (0: the sink's default, 30s).
	Timeout time.Duration
	// MaxIdleConns is how many idle connections to keep to the endpoint:
	// at least the requests the shipper keeps in flight (0: 16).
	MaxIdleConns int
	// Transport, if set, carries the requests instead of the sink's own
	// (audit-ship --dry-run captures them there; nothing is sent).
	Transport http.RoundTripper
}

// HTTP is what HTTPFlags (and --url, --gzip) gave, for a sink's Config.
type HTTP struct {
	URL  string
	Gzip bool
	Conn
}

// HTTP returns the shared HTTP settings.
func (v *Values) HTTP() HTTP {
	return HTTP{
		URL: v.String("url"), Gzip: v.Bool("gzip"),
		Conn: Conn{
			Timeout: v.Duration("timeout"),
			CAFile:  v.String("ca-file"), CertFile: v.String("cert-file"), KeyFile: v.String("key-file"),
			InsecureSkipVerify: v.Bool("insecure-skip-verify"), AllowInsecureHTTP: v.Bool("allow-insecure-http"),
			MaxIdleConns: 2 * v.Inflight, Transport: v.Transport,
		},
	}
}

// Values are the parsed values of every sink's flags (Bind), as a Decl's
// New reads them.
type Values struct {
	Kind      string
	Inflight  int               // --inflight
	Transport http.RoundTripper // --dry-run's capture, else nil
	// Chain, if set, gives the chain id audit-ship read from its input's
	// leading marks ("" until known): the Kafka key of records whose
	// Record.Chain is empty (until batches carry the chain).
	Chain func() string

	vals   map[string]*value
	kinds  map[string][]string // flag -> the kinds that declare it
	given  map[string]bool
	origin map[string]string
}

// Bind registers the flags of decls on fs, each name once, and returns
// the Values they parse into. It panics if two declarations of one flag
// disagree on type or default (a programming error, caught by tests).
func Bind(fs *flag.FlagSet, decls []*Decl) *Values {
	v := &Values{vals: map[string]*value{}, kinds: map[string][]string{}, given: map[string]bool{}, origin: map[string]string{}}
	for _, f := range Table(decls) {
		v.kinds[f.Name] = f.Kinds
		val := &value{typ: f.Type}
		if err := val.Set(f.Default); err != nil && f.Default != "" {
			panic(fmt.Sprintf("sink flag --%s: default %q: %v", f.Name, f.Default, err))
		}
		v.vals[f.Name] = val
		fs.Var(val, f.Name, f.Help)
	}
	return v
}

// Parsed records which flags fs was given (command line, environment,
// -config file); call it once after parsing.
func (v *Values) Parsed(fs *flag.FlagSet) {
	fs.Visit(func(f *flag.Flag) {
		if _, ok := v.vals[f.Name]; ok {
			v.given[f.Name] = true
		}
	})
}

// KindsOf returns the kinds that declare flag name, nil for a flag no
// sink declares.
func (v *Values) KindsOf(name string) []string { return v.kinds[name] }

// Given reports whether flag name was given (not from agent.yaml).
func (v *Values) Given(name string) bool { return v.given[name] }

// Take sets flag name from another source (agent.yaml), named by origin
// in messages, unless the flag was given.
func (v *Values) Take(name, val, origin string) error {
	x, ok := v.vals[name]
	if !ok || v.given[name] {
		return nil
	}
	if err := x.Set(val); err != nil {
		return exitcode.New(exitcode.Usage, fmt.Errorf("%s: %w", origin, err))
	}
	v.origin[name] = origin
	return nil
}

// Label names where flag name's value came from: "--token", or the
// agent.yaml key and line.
func (v *Values) Label(name string) string {
	if o, ok := v.origin[name]; ok {
		return o
	}
	return "--" + name
}

// Usage is err about flag name as a usage error: "<label>: err".
func (v *Values) Usage(name string, err error) error {
	return exitcode.New(exitcode.Usage, fmt.Errorf("%s: %w", v.Label(name), err))
}

func (v *Values) String(name string) string          { return v.get(name).s }
func (v *Values) Bool(name string) bool              { return v.get(name).b }
func (v *Values) Duration(name string) time.Duration { return v.get(name).d }
func (v *Values) Int(name string) int                { return v.get(name).i }

func (v *Values) get(name string) *value {
	x, ok := v.vals[name]
	if !ok {
		panic("sink: no flag --" + name + " declared")
	}
	return x
}

// Secret resolves the secret reference of flag name (bounded by
// --secret-timeout); a bad reference is a usage error naming the flag.
func (v *Values) Secret(ctx context.Context, name string) (*secret.Source, error) {
	src, err := secret.NewSourceWith(ctx, v.String(name), secret.Options{ExecTimeout: v.Duration("secret-timeout")})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, v.Usage(name, err)
	}
	return src, nil
}

// value is one flag's value.
type value struct {
	typ FlagType
	s   string
	b   bool
	d   time.Duration
	i   int
}

func (x *value) Set(s string) error {
	var err error
	switch x.typ {
	case String:
		x.s = s
	case Bool:
		if s == "" {
			s = "false"
		}
		x.b, err = strconv.ParseBool(s)
	case Duration:
		if s == "" {
			s = "0s"
		}
		x.d, err = time.ParseDuration(s)
	case Int:
		if s == "" {
			s = "0"
		}
		x.i, err = strconv.Atoi(s)
	}
	if err != nil {
		return fmt.Errorf("invalid value %q", s)
	}
	return nil
}

func (x *value) String() string {
	if x == nil {
		return ""
	}
	switch x.typ {
	case Bool:
		return strconv.FormatBool(x.b)
	case Duration:
		return x.d.String()
	case Int:
		return strconv.Itoa(x.i)
	}
	return x.s
}

func (x *value) IsBoolFlag() bool { return x.typ == Bool }

// TableFlag is one row of the flag table: a flag, the kinds it applies
// to (in registry order) and its help joined over them.
type TableFlag struct {
	Flag
	Kinds []string
}

// Table returns every flag of decls once, in the order first declared,
// with the kinds that declare it and the help joined per kind ("splunk,
// elastic: X; datadog: Y", or the help alone when every kind says the
// same). It panics if two declarations disagree on type or default.
func Table(decls []*Decl) []TableFlag {
	var out []TableFlag
	at := map[string]int{}
	helps := map[string][][2]string{} // name -> (kind, help)
	for _, d := range decls {
		for _, f := range d.Flags {
			i, ok := at[f.Name]
			if !ok {
				at[f.Name] = len(out)
				out = append(out, TableFlag{Flag: f})
				i = len(out) - 1
			} else if out[i].Type != f.Type || out[i].Default != f.Default {
				panic(fmt.Sprintf("sink flag --%s: %s declares it %v default %q, %s %v default %q",
					f.Name, out[i].Kinds[0], out[i].Type, out[i].Default, d.Kind, f.Type, f.Default))
			}
			out[i].Kinds = append(out[i].Kinds, d.Kind)
			helps[f.Name] = append(helps[f.Name], [2]string{d.Kind, f.Help})
		}
	}
	for i := range out {
		out[i].Help = joinHelp(helps[out[i].Name], len(out[i].Kinds) == len(decls))
	}
	return out
}

// joinHelp groups kinds by help text: "splunk, elastic: X; file: Y". A
// text every declaring kind shares is given alone if all kinds declare it.
func joinHelp(hs [][2]string, all bool) string {
	var texts []string
	kinds := map[string][]string{}
	for _, h := range hs {
		if !slices.Contains(texts, h[1]) {
			texts = append(texts, h[1])
		}
		kinds[h[1]] = append(kinds[h[1]], h[0])
	}
	if len(texts) == 1 && all {
		return texts[0]
	}
	var parts []string
	for _, t := range texts {
		parts = append(parts, strings.Join(kinds[t], ", ")+": "+t)
	}
	return strings.Join(parts, "; ")
}

// Lookup returns the declaration of kind, or nil.
func Lookup(decls []*Decl, kind string) *Decl {
	for _, d := range decls {
		if d.Kind == kind {
			return d
		}
	}
	return nil
}

// Kinds returns the kinds of decls in words: "splunk, elastic, datadog or
// file".
func Kinds(decls []*Decl) string {
	var ks []string
	for _, d := range decls {
		ks = append(ks, d.Kind)
	}
	if len(ks) < 2 {
		return strings.Join(ks, "")
	}
	return strings.Join(ks[:len(ks)-1], ", ") + " or " + ks[len(ks)-1]
}

// Usagef is a usage error (exit 2), for a Decl's New.
func Usagef(format string, args ...any) error {
	return exitcode.Errorf(exitcode.Usage, format, args...)
}
