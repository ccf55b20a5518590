// Package route renders per-record destinations (a Splunk or Elasticsearch
// index, Datadog tags, a Kafka topic) from a template such as declaragent_${tenant:id}.
// A template is checked once, at startup, against its target's naming
// rules; a record's values can never choose where a name starts nor bring
// a character the target forbids, and two different values never share a
// name by accident. Placeholders, targets and the escaping rule:
// docs/design.md, "lib/route".

package route

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/auditpipe/auditpipe/lib/sink"
)

// Rules names the naming rules a template is checked and rendered against.
type Rules uint8

const (
	ElasticIndex Rules = iota + 1 // an Elasticsearch index (or data stream, or alias) name
	SplunkIndex                   // a Splunk index name
	DatadogTags                   // a Datadog ddtags value: "k:v,k:v"
	KafkaTopic                    // a Kafka topic name
)

func (r Rules) String() string {
	switch r {
	case ElasticIndex:
		return "Elasticsearch index name"
	case SplunkIndex:
		return "Splunk index name"
	case DatadogTags:
		return "Datadog tags"
	case KafkaTopic:
		return "Kafka topic name"
	}
	return fmt.Sprintf("rules(%d)", uint8(r))
}

// Limits, per name (per tag for DatadogTags).
const (
	MaxElastic = 255
	MaxSplunk  = 80
	MaxTag     = 200
	MaxKafka   = 249
)

// maxCache is how many rendered names a Template keeps; past it the cache
// starts again (a log with more tenant × kind × day combinations than
// that still renders correctly, only more slowly).
const maxCache = 8192

// hashLen is the length of the suffix of a changed value: "-" and 8 hex.
const hashLen = 9

// minShare is the least room a placeholder value may have: a few
// characters of the value and the hash suffix.
const minShare = hashLen + 3

type partKind uint8

const (
	literal partKind = iota
	tenantID
	recordKind
	date
)

type part struct {
	kind  partKind
	text  string // literal text, or the date format
	share int    // the most bytes a tenant or kind value may take
}

// Template is a parsed template. It is safe for concurrent use.
type Template struct {
	src   string
	rules Rules
	segs  [][]part // one per name, or per tag
	fixed string   // the name when the template has no placeholder

	useTenant, useKind, useDate bool

	mu    sync.RWMutex
	cache map[key]string
}

type key struct {
	tenant, kind string
	day          int64
}

// Parse parses and checks a template for rules. Its errors say what is
// wrong and how to write it.
func Parse(src string, rules Rules) (*Template, error) {
	if rules < ElasticIndex || rules > KafkaTopic {
		return nil, fmt.Errorf("route: unknown rules %d", rules)
	}
	parts, err := tokenize(src)
	if err != nil {
		return nil, fmt.Errorf("%s template %q: %w", rules, src, err)
	}
	t := &Template{src: src, rules: rules}
	var segs [][]part
	if rules == DatadogTags {
		segs = splitTags(parts)
	} else {
		segs = [][]part{parts}
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("%s template %q is empty", rules, src)
	}
	for _, seg := range segs {
		if err := t.checkSegment(seg); err != nil {
			return nil, fmt.Errorf("%s template %q: %w", rules, src, err)
		}
		for _, p := range seg {
			switch p.kind {
			case tenantID:
				t.useTenant = true
			case recordKind:
				t.useKind = true
			case date:
				t.useDate = true
			}
		}
	}
	t.segs = segs
	if !t.useTenant && !t.useKind && !t.useDate {
		var b []byte
		t.fixed = string(t.render(b, key{}))
	} else {
		t.cache = make(map[key]string)
	}
	return t, nil
}

// String returns the template as written.
func (t *Template) String() string { return t.src }

// Static returns the one name the template gives, if it has no
// placeholder.
func (t *Template) Static() (string, bool) {
	return t.fixed, t.cache == nil
}

// Render returns the name for r. It does not allocate when the tenant,
// kind and day (those the template uses) were seen recently.
func (t *Template) Render(r *sink.Record) string {
	if t.cache == nil {
		return t.fixed
	}
	var k key
	if t.useTenant {
		k.tenant = r.TenantID
	}
	if t.useKind {
		k.kind = r.Kind
	}
	if t.useDate {
		k.day = dayOf(r.TS)
	}
	t.mu.RLock()
	name, ok := t.cache[k]
	t.mu.RUnlock()
	if ok {
		return name
	}
	name = string(t.render(nil, k))
	k.tenant, k.kind = strings.Clone(k.tenant), strings.Clone(k.kind) // r's strings alias its batch
	t.mu.Lock()
	if len(t.cache) >= maxCache {
		clear(t.cache)
	}
	t.cache[k] = name
	t.mu.Unlock()
	return name
}

// maxTS is the last millisecond of year 9999.
const maxTS = 253402300799999

const dayMS = 24 * 60 * 60 * 1000

// dayOf returns the UTC day number of ts (ms since the epoch), with ts
// clamped to years 1970..9999.
func dayOf(ts int64) int64 {
	ts = min(max(ts, 0), maxTS)
	return ts / dayMS
}

func (t *Template) render(b []byte, k key) []byte {
	for i, seg := range t.segs {
		if i > 0 {
			b = append(b, ',')
		}
		for _, p := range seg {
			switch p.kind {
			case literal:
				b = append(b, p.text...)
			case tenantID:
				b = t.appendValue(b, k.tenant, p.share)
			case recordKind:
				b = t.appendValue(b, k.kind, p.share)
			case date:
				b = appendDate(b, p.text, k.day)
			}
		}
	}
	if t.rules == SplunkIndex {
		for {
			i := strings.Index(string(b), "kvstore")
			if i < 0 {
				break
			}
			b[i+4] = '_' // kvst_re: same length, so the limit still holds
		}
	}
	return b
}

// appendValue appends v as it stands if it is safe and fits share, else
// its sanitised form with a hash suffix.
func (t *Template) appendValue(b []byte, v string, share int) []byte {
	if len(v) <= share && t.safeValue(v) {
		return append(b, v...)
	}
	start := len(b)
	for _, c := range v {
		if c < utf8.RuneSelf {
			lc := byte(c)
			if 'A' <= lc && lc <= 'Z' {
				lc += 'a' - 'A'
			}
			if valueByte(t.rules, lc) {
				b = append(b, lc)
				continue
			}
		}
		b = append(b, '_')
		if len(b)-start >= share-hashLen {
			break
		}
	}
	if len(b)-start > share-hashLen {
		b = b[:start+share-hashLen]
	}
	sum := sha256.Sum256([]byte(v))
	b = append(b, '-')
	return hex.AppendEncode(b, sum[:4])
}

func (t *Template) safeValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if !valueByte(t.rules, v[i]) {
			return false
		}
	}
	return !(t.rules == SplunkIndex && strings.Contains(v, "kvstore"))
}

// valueByte reports whether c may appear in a value as it stands: the same
// small set for every target, the intersection of what all three allow.
func valueByte(_ Rules, c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_', c == '-':
		return true
	}
	return false
}

// appendDate formats day (days since the epoch) by format.
func appendDate(b []byte, format string, day int64) []byte {
	y, m, d := time.UnixMilli(day * dayMS).UTC().Date()
	for i := 0; i < len(format); {
		switch {
		case strings.HasPrefix(format[i:], "YYYY"):
			b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10))
			i += 4
		case strings.HasPrefix(format[i:], "MM"):
			b = append(b, byte('0'+int(m)/10), byte('0'+int(m)%10))
			i += 2
		case strings.HasPrefix(format[i:], "DD"):
			b = append(b, byte('0'+d/10), byte('0'+d%10))
			i += 2
		default:
			b = append(b, format[i])
			i++
		}
	}
	return b
}

// dateSeparators returns format without its YYYY, MM and DD.
func dateSeparators(format string) string {
	return strings.NewReplacer("YYYY", "", "MM", "", "DD", "").Replace(format)
}

// dateWidth is the length of a date in format.
func dateWidth(format string) int {
	return len(appendDate(nil, format, 0))
}

// Known lists the placeholders, for messages.
const Known = "${tenant:id}, ${kind}, ${date:FORMAT} (FORMAT from YYYY, MM, DD and separators, e.g. ${date:YYYY.MM.DD})"

// tokenize splits src into literal text and placeholders.
func tokenize(src string) ([]part, error) {
	var parts []part
	lit := func(s string) {
		if s == "" {
			return
		}
		if n := len(parts); n > 0 && parts[n-1].kind == literal {
			parts[n-1].text += s
			return
		}
		parts = append(parts, part{kind: literal, text: s})
	}
	for rest := src; rest != ""; {
		i := strings.Index(rest, "${")
		if i < 0 {
			lit(rest)
			break
		}
		lit(rest[:i])
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return nil, errors.New(`"${" without a closing "}"`)
		}
		name := rest[i+2 : i+end]
		rest = rest[i+end+1:]
		switch {
		case name == "tenant:id":
			parts = append(parts, part{kind: tenantID})
		case name == "kind":
			parts = append(parts, part{kind: recordKind})
		case strings.HasPrefix(name, "date:"):
			format := name[len("date:"):]
			if !strings.Contains(format, "YYYY") && !strings.Contains(format, "MM") && !strings.Contains(format, "DD") {
				return nil, fmt.Errorf("${%s}: the date format needs YYYY, MM or DD (e.g. ${date:YYYY.MM.DD})", name)
			}
			parts = append(parts, part{kind: date, text: format})
		default:
			return nil, fmt.Errorf("unknown placeholder ${%s}: the known ones are %s", name, Known)
		}
	}
	return parts, nil
}

// splitTags splits parts into tags at the commas of the literal text and
// trims blanks around each tag. Empty tags are dropped.
func splitTags(parts []part) [][]part {
	var segs [][]part
	var cur []part
	flush := func() {
		if n := len(cur); n > 0 {
			if cur[0].kind == literal {
				cur[0].text = strings.TrimLeft(cur[0].text, " \t")
			}
			if cur[n-1].kind == literal {
				cur[n-1].text = strings.TrimRight(cur[n-1].text, " \t")
			}
			var kept []part
			for _, p := range cur {
				if p.kind != literal || p.text != "" {
					kept = append(kept, p)
				}
			}
			if len(kept) > 0 {
				segs = append(segs, kept)
			}
		}
		cur = nil
	}
	for _, p := range parts {
		if p.kind != literal {
			cur = append(cur, p)
			continue
		}
		pieces := strings.Split(p.text, ",")
		for i, s := range pieces {
			if i > 0 {
				flush()
			}
			if s != "" {
				cur = append(cur, part{kind: literal, text: s})
			}
		}
	}
	flush()
	return segs
}

// checkSegment checks one name (or tag) of a template and sets the share
// of each value placeholder.
func (t *Template) checkSegment(seg []part) error {
	what, limit := "the name", t.limit()
	if t.rules == DatadogTags {
		what = "each tag"
	}
	if len(seg) == 0 {
		return fmt.Errorf("%s is empty", what)
	}
	if seg[0].kind != literal {
		return fmt.Errorf("%s must begin with literal text, so that no record value can choose how it starts (write e.g. %s)", what, t.example())
	}
	if err := t.checkFirst(seg[0].text[0]); err != nil {
		return err
	}
	fixed, values := 0, 0
	for _, p := range seg {
		switch p.kind {
		case literal:
			if err := t.checkLiteral(p.text); err != nil {
				return err
			}
			fixed += len(p.text)
		case date:
			if err := t.checkLiteral(dateSeparators(p.text)); err != nil {
				return fmt.Errorf("${date:%s}: %w", p.text, err)
			}
			fixed += dateWidth(p.text)
		default:
			values++
		}
	}
	if t.rules == SplunkIndex {
		for _, p := range seg {
			if p.kind == literal && strings.Contains(p.text, "kvstore") {
				return errors.New(`a Splunk index name may not contain "kvstore"`)
			}
		}
	}
	if values == 0 {
		if fixed > limit {
			return fmt.Errorf("%s is %d bytes long, over the limit of %d", what, fixed, limit)
		}
		return nil
	}
	share := (limit - fixed) / values
	if share < minShare {
		return fmt.Errorf("the literal text leaves %d bytes of the limit of %d for the %d placeholder value(s), fewer than %d each", max(limit-fixed, 0), limit, values, minShare)
	}
	for i := range seg {
		if seg[i].kind == tenantID || seg[i].kind == recordKind {
			seg[i].share = share
		}
	}
	return nil
}

func (t *Template) limit() int {
	switch t.rules {
	case ElasticIndex:
		return MaxElastic
	case SplunkIndex:
		return MaxSplunk
	case KafkaTopic:
		return MaxKafka
	}
	return MaxTag
}

func (t *Template) example() string {
	if t.rules == DatadogTags {
		return "tenant:${tenant:id}"
	}
	if t.rules == SplunkIndex {
		return "declaragent_${tenant:id}"
	}
	if t.rules == KafkaTopic {
		return "declaragent-audit-${tenant:id}"
	}
	return "declaragent-${tenant:id}"
}

// checkFirst checks the first byte of a name or tag.
func (t *Template) checkFirst(c byte) error {
	switch t.rules {
	case ElasticIndex:
		if c == '-' || c == '_' || c == '+' || c == '.' {
			return fmt.Errorf("an Elasticsearch index name may not start with %q (-, _ and + are invalid, . makes a hidden index)", c)
		}
	case SplunkIndex:
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return fmt.Errorf("a Splunk index name must start with a lowercase letter or a digit, not %q", c)
		}
	case DatadogTags:
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return fmt.Errorf("a Datadog tag must start with a letter, not %q", c)
		}
	case KafkaTopic:
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return fmt.Errorf("a Kafka topic name must start with a letter or a digit here, not %q (a leading _ is Kafka's internal topics')", c)
		}
	}
	return nil
}

// checkLiteral checks literal text (or a date format's separators) against
// the rules.
func (t *Template) checkLiteral(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("the template is not valid UTF-8")
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return errors.New("the template holds a control character")
		}
		switch t.rules {
		case ElasticIndex:
			if 'A' <= c && c <= 'Z' {
				return fmt.Errorf("an Elasticsearch index name must be lowercase (%q)", c)
			}
			if strings.ContainsRune(`\/*?"<>|,#: `, c) || c == '$' || c == '{' || c == '}' {
				return fmt.Errorf(`an Elasticsearch index name may not contain %q (none of \ / * ? " < > | , # : or space)`, c)
			}
		case SplunkIndex:
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
				return fmt.Errorf("a Splunk index name holds only lowercase letters, digits, _ and -, not %q", c)
			}
		case DatadogTags:
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("_-:./", c)) {
				return fmt.Errorf("a Datadog tag holds only letters, digits, _ - : . and /, not %q", c)
			}
		case KafkaTopic:
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("a Kafka topic name holds only letters, digits, . _ and -, not %q", c)
			}
		}
	}
	return nil
}

// Check reports whether name is valid under rules as this package
// understands them (the literal rules, the first byte and the length): a
// rendered name always is.
func Check(rules Rules, name string) error {
	t := &Template{rules: rules}
	segs := []string{name}
	if rules == DatadogTags {
		segs = strings.Split(name, ",")
	}
	for _, s := range segs {
		if s == "" {
			return errors.New("empty name or tag")
		}
		if err := t.checkFirst(s[0]); err != nil {
			return err
		}
		if err := t.checkLiteral(s); err != nil {
			return err
		}
		if len(s) > t.limit() {
			return fmt.Errorf("%d bytes, over %d", len(s), t.limit())
		}
		if rules == SplunkIndex && strings.Contains(s, "kvstore") {
			return errors.New(`contains "kvstore"`)
		}
	}
	return nil
}

// FromFlag parses the template a sink flag (--index, --tags) gave: a static
// name (per nil), a function of the record (static ""), or neither when
// the flag is empty. A bad template is a usage error naming the flag.
func FromFlag(v *sink.Values, flag string, rules Rules) (static string, per func(*sink.Record) string, err error) {
	src := v.String(flag)
	if src == "" {
		return "", nil, nil
	}
	t, err := Parse(src, rules)
	if err != nil {
		return "", nil, v.Usage(flag, err)
	}
	if name, ok := t.Static(); ok {
		return name, nil, nil
	}
	return "", t.Render, nil
}
