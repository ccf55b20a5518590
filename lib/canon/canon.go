package canon

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/auditpipe/auditpipe/lib/jsonstr"
)

// MaxDepth is the deepest nesting of arrays and objects that
// Append accepts. Deeper input is rejected with an error rather than
// risking unbounded recursion.
const MaxDepth = 1000

// Error reports input that Append cannot canonicalise: invalid
// JSON, invalid UTF-8 or nesting deeper than MaxDepth.
type Error struct {
	Offset int    // byte offset in the input where the problem was found
	Msg    string // what was wrong, lowercase
}

func (e *Error) Error() string {
	return "canonical: " + e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

// Append appends to dst the canonical form of the JSON value in raw:
// what ECMAScript computes as JSON.stringify(deepSortKeys(JSON.parse(raw))).
// See docs/contract.md section 3.
//
// deepSortKeys is Declaragent's (packages/core/src/audit/chain-verify.ts):
// each object is rebuilt by assigning out[k] = deepSortKeys(o[k]) to a fresh
// {} for k in Object.keys(o).sort(). The output therefore has:
//   - array-index keys ("0".."4294967294", canonical decimal) first in
//     ascending numeric order, then the other keys sorted by UTF-16 code
//     units (an astral character sorts before U+E000..U+FFFF);
//   - for duplicate keys, the last value (as JSON.parse);
//   - no "__proto__" member: the assignment out["__proto__"] = v runs the
//     Object.prototype setter instead of creating a property, so JS drops it;
//   - numbers as Number::toString of the parsed double (1e21 -> 1e+21,
//     -0 -> 0, 1e400 -> Infinity -> null);
//   - strings escaped as JSON.stringify does (lone surrogates as \udxxx);
//   - no whitespace.
//
// The input must be valid UTF-8 (upstream stages reject anything else); an
// invalid byte sequence inside a string is an error, as are raw control
// characters in strings, trailing data, and nesting deeper than
// MaxDepth. On error dst is returned unchanged (same length) and
// the error is a *Error. dst must not overlap raw.
//
// Append is safe for concurrent use; it keeps its scratch space in a
// sync.Pool and allocates nothing per call in the steady state beyond the
// growth of dst.
func Append(dst, raw []byte) ([]byte, error) {
	c := pool.Get().(*canonicalizer)
	start := len(dst)
	c.raw = raw
	c.pos = 0
	c.depth = 0
	c.skipSpace()
	out, err := c.value(dst)
	if err == nil {
		c.skipSpace()
		if c.pos != len(raw) {
			err = c.fail("unexpected data after the top-level value")
		}
	}
	c.release()
	if err != nil {
		return dst[:start], err
	}
	return out, nil
}

var pool = sync.Pool{New: func() any { return new(canonicalizer) }}

// canonicalizer is the scratch state of one Append call.
type canonicalizer struct {
	raw   []byte
	pos   int
	depth int

	// members is a stack of object members: each object pushes its members,
	// sorts them (through order), writes them out and pops them.
	members    []member
	membersMax int    // high-water mark of len(members), to clear on release
	order      []item // the sort order of the object being written
	keys       []byte // decoded keys that contained escapes (WTF-8)
	tmp        []byte // an object's member values while they are reordered
	str        []byte // one decoded string value that contained escapes
}

// member is one member of the object being canonicalised.
type member struct {
	key    []byte // decoded key: generalised UTF-8, lone surrogates included
	vStart int    // value's canonical bytes are tmp[vStart:vEnd] ...
	vEnd   int    // ... (offsets in dst until the object is complete)
	ord    int    // position in the source object, for "last one wins"
	prefix uint64 // see keyPrefix
	index  uint32 // numeric value when isIndex
	// isIndex: key is an ECMAScript array index (enumerated first).
	isIndex bool
	// astral: key holds a code point above U+FFFF (so UTF-8 byte order and
	// UTF-16 code unit order may differ).
	astral bool
	// escaped: key had escapes in the input and must be re-escaped from
	// key; otherwise the input bytes are already in output form.
	escaped bool
}

const maxRetain = 1 << 20

func (c *canonicalizer) release() {
	clear(c.members[:c.membersMax])
	c.members = c.members[:0]
	c.membersMax = 0
	c.raw = nil
	if cap(c.keys) > maxRetain || cap(c.tmp) > maxRetain ||
		cap(c.str) > maxRetain || cap(c.members) > maxRetain/64 ||
		cap(c.order) > maxRetain/16 {
		return // let the GC have a state that grew on an outsized input
	}
	c.keys = c.keys[:0]
	c.tmp = c.tmp[:0]
	c.str = c.str[:0]
	pool.Put(c)
}

func (c *canonicalizer) fail(msg string) error {
	return &Error{Offset: c.pos, Msg: msg}
}

func (c *canonicalizer) skipSpace() {
	c.pos = jsonstr.SkipSpace(c.raw, c.pos)
}

// value canonicalises the value at c.pos (whitespace already skipped).
func (c *canonicalizer) value(dst []byte) ([]byte, error) {
	if c.pos >= len(c.raw) {
		return dst, c.fail("unexpected end of input")
	}
	switch ch := c.raw[c.pos]; {
	case ch == '{':
		return c.object(dst)
	case ch == '[':
		return c.array(dst)
	case ch == '"':
		return c.stringValue(dst)
	case ch == '-' || ('0' <= ch && ch <= '9'):
		return c.number(dst)
	case ch == 't':
		return c.literal(dst, "true")
	case ch == 'f':
		return c.literal(dst, "false")
	case ch == 'n':
		return c.literal(dst, "null")
	default:
		return dst, c.fail("invalid character " + strconv.QuoteRune(rune(ch)) + " looking for a value")
	}
}

func (c *canonicalizer) literal(dst []byte, lit string) ([]byte, error) {
	if len(c.raw)-c.pos < len(lit) || string(c.raw[c.pos:c.pos+len(lit)]) != lit {
		return dst, c.fail("invalid literal, expected " + lit)
	}
	c.pos += len(lit)
	return append(dst, lit...), nil
}

func (c *canonicalizer) enter() error {
	c.depth++
	if c.depth > MaxDepth {
		return c.fail("nesting deeper than " + strconv.Itoa(MaxDepth))
	}
	return nil
}

func (c *canonicalizer) array(dst []byte) ([]byte, error) {
	if err := c.enter(); err != nil {
		return dst, err
	}
	c.pos++ // '['
	dst = append(dst, '[')
	c.skipSpace()
	if c.pos < len(c.raw) && c.raw[c.pos] == ']' {
		c.pos++
		c.depth--
		return append(dst, ']'), nil
	}
	for {
		var err error
		if dst, err = c.value(dst); err != nil {
			return dst, err
		}
		c.skipSpace()
		if c.pos >= len(c.raw) {
			return dst, c.fail("unexpected end of input in array")
		}
		switch c.raw[c.pos] {
		case ',':
			c.pos++
			c.skipSpace()
			dst = append(dst, ',')
		case ']':
			c.pos++
			c.depth--
			return append(dst, ']'), nil
		default:
			return dst, c.fail("expected ',' or ']' in array")
		}
	}
}

func (c *canonicalizer) object(dst []byte) ([]byte, error) {
	if err := c.enter(); err != nil {
		return dst, err
	}
	c.pos++ // '{'
	c.skipSpace()
	if c.pos < len(c.raw) && c.raw[c.pos] == '}' {
		c.pos++
		c.depth--
		return append(dst, '{', '}'), nil
	}
	// Member values are canonicalised in source order onto the end of dst,
	// then moved to c.tmp and written back in sorted order.
	base := len(dst)
	first := len(c.members)
	for ord := 0; ; ord++ {
		if c.pos >= len(c.raw) || c.raw[c.pos] != '"' {
			return dst, c.fail("expected a string key in object")
		}
		m, err := c.key()
		if err != nil {
			return dst, err
		}
		c.skipSpace()
		if c.pos >= len(c.raw) || c.raw[c.pos] != ':' {
			return dst, c.fail("expected ':' after object key")
		}
		c.pos++
		c.skipSpace()
		m.ord = ord
		m.vStart = len(dst) - base
		if dst, err = c.value(dst); err != nil {
			return dst, err
		}
		m.vEnd = len(dst) - base
		c.members = append(c.members, m)
		c.membersMax = max(c.membersMax, len(c.members))

		c.skipSpace()
		if c.pos >= len(c.raw) {
			return dst, c.fail("unexpected end of input in object")
		}
		if c.raw[c.pos] == ',' {
			c.pos++
			c.skipSpace()
			continue
		}
		if c.raw[c.pos] != '}' {
			return dst, c.fail("expected ',' or '}' in object")
		}
		c.pos++
		break
	}
	c.depth--

	ms := c.members[first:]
	order := c.order[:0]
	for i := range ms {
		order = append(order, item{ms[i].prefix, int32(i)})
	}
	sortItems(order, ms)
	c.order = order
	c.tmp = append(c.tmp[:0], dst[base:]...)
	dst = append(dst[:base], '{')
	n := 0
	for i, it := range order {
		m := &ms[it.i]
		// Equal keys are adjacent and in source order: keep only the last.
		if i+1 < len(order) && sameKey(m, &ms[order[i+1].i]) {
			continue
		}
		if string(m.key) == "__proto__" {
			continue // JS: out.__proto__ = v sets the prototype, no property
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = append(dst, '"')
		if m.escaped {
			dst = appendEscaped(dst, m.key)
		} else {
			dst = append(dst, m.key...)
		}
		dst = append(dst, '"', ':')
		dst = append(dst, c.tmp[m.vStart:m.vEnd]...)
	}
	c.members = c.members[:first]
	return append(dst, '}'), nil
}

// key parses the object key at c.pos (an opening quote) and returns a member
// with the key fields filled in.
func (c *canonicalizer) key() (member, error) {
	var m member
	start := c.pos + 1
	end, escaped, astral, bad := jsonstr.Scan(c.raw, c.pos)
	c.pos = end
	if bad != jsonstr.OK {
		return m, c.fail(scanProblems[bad])
	}
	end-- // the closing quote
	if escaped {
		k := len(c.keys)
		var a bool
		c.keys, a = jsonstr.UnescapeWTF8(c.keys, c.raw[start:end])
		m.key = c.keys[k:len(c.keys):len(c.keys)]
		m.escaped = true
		astral = a
	} else {
		m.key = c.raw[start:end:end]
	}
	m.astral = astral
	m.index, m.isIndex = arrayIndex(m.key)
	m.prefix = keyPrefix(&m)
	return m, nil
}

// stringValue writes the string value at c.pos in JSON.stringify form.
func (c *canonicalizer) stringValue(dst []byte) ([]byte, error) {
	start := c.pos + 1
	end, escaped, _, bad := jsonstr.Scan(c.raw, c.pos)
	c.pos = end
	if bad != jsonstr.OK {
		return dst, c.fail(scanProblems[bad])
	}
	end-- // the closing quote
	dst = append(dst, '"')
	if escaped {
		c.str, _ = jsonstr.UnescapeWTF8(c.str[:0], c.raw[start:end])
		dst = appendEscaped(dst, c.str)
	} else {
		dst = append(dst, c.raw[start:end]...)
	}
	return append(dst, '"'), nil
}

// scanProblems words jsonstr.Scan's problems for an Error, at the offset
// Scan gives (key and stringValue call Scan directly: it is the hot loop).
var scanProblems = [...]string{
	jsonstr.Unterminated:       "unexpected end of input in string",
	jsonstr.UnterminatedEscape: "unexpected end of input in string escape",
	jsonstr.BadEscape:          "invalid escape in string",
	jsonstr.BadUnicodeEscape:   "invalid \\u escape in string",
	jsonstr.ControlByte:        "control character in string",
	jsonstr.BadUTF8:            "invalid UTF-8 in string",
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends s (generalised UTF-8, as from jsonstr.UnescapeWTF8) in
// JSON.stringify's escaped form, without the quotes.
func appendEscaped(dst, s []byte) []byte {
	start := 0
	for i := 0; i < len(s); {
		// Eight plain ASCII bytes at a time (0xED is not ASCII).
		if i+8 <= len(s) {
			v := binary.LittleEndian.Uint64(s[i:])
			if jsonstr.PlainWord(v) {
				i += 8
				continue
			}
		}
		ch := s[i]
		if ch >= 0x20 && ch != '"' && ch != '\\' && ch != 0xED {
			i++
			continue
		}
		if ch == 0xED {
			// U+D000..U+DFFF; A0..BF in the second byte is a surrogate.
			if i+2 < len(s) && s[i+1] >= 0xA0 {
				dst = append(dst, s[start:i]...)
				u := rune(s[i]&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F)
				dst = append(dst, '\\', 'u',
					hexDigits[u>>12], hexDigits[u>>8&0xF],
					hexDigits[u>>4&0xF], hexDigits[u&0xF])
				i += 3
				start = i
				continue
			}
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch ch {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[ch>>4], hexDigits[ch&0xF])
		}
		i++
		start = i
	}
	return append(dst, s[start:]...)
}

// arrayIndex reports whether key is an ECMAScript array index: the
// canonical decimal form of an integer in [0, 2^32-2].
func arrayIndex(key []byte) (uint32, bool) {
	if len(key) == 0 || len(key) > 10 || (key[0] == '0' && len(key) > 1) {
		return 0, false
	}
	var v uint64
	for _, ch := range key {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		v = v*10 + uint64(ch-'0')
	}
	if v > 4294967294 {
		return 0, false
	}
	return uint32(v), true
}

// item is one entry of the sort order of an object's members.
type item struct {
	prefix uint64 // the member's prefix
	i      int32  // index of the member
}

// keyPrefix returns a number whose order is consistent with
// compareMembers: if keyPrefix(a) < keyPrefix(b) then a sorts
// before b. Most keys are told apart by it, without a call to the full
// comparison. Array indices map to their value. Other keys map to 1<<63
// plus their first 7 bytes, big-endian, where a key that ends is padded with
// 0x00 and everything from the first non-ASCII byte on is 0xFF: a
// non-ASCII character's first UTF-16 code unit is above every ASCII one.
func keyPrefix(m *member) uint64 {
	if m.isIndex {
		return uint64(m.index)
	}
	p := uint64(1) << 63
	for i := range 7 {
		var b byte
		if i < len(m.key) {
			b = m.key[i]
			if b >= utf8.RuneSelf {
				p |= (1<<(8*(7-i)) - 1)
				break
			}
		}
		p |= uint64(b) << (8 * (6 - i))
	}
	return p
}

// sortItems sorts items by prefix, then by compareMembers.
func sortItems(items []item, ms []member) {
	less := func(x, y item) bool {
		if x.prefix != y.prefix {
			return x.prefix < y.prefix
		}
		return compareMembers(&ms[x.i], &ms[y.i]) < 0
	}
	if len(items) > 24 {
		slices.SortFunc(items, func(x, y item) int {
			if less(x, y) {
				return -1
			}
			if less(y, x) {
				return 1
			}
			return 0
		})
		return
	}
	for i := 1; i < len(items); i++ {
		x := items[i]
		j := i
		for ; j > 0 && less(x, items[j-1]); j-- {
			items[j] = items[j-1]
		}
		items[j] = x
	}
}

// compareMembers orders members as they come out of deepSortKeys:
// array indices numerically, then the other keys by UTF-16 code units;
// equal keys by source order.
func compareMembers(a, b *member) int {
	if a.isIndex != b.isIndex {
		if a.isIndex {
			return -1
		}
		return 1
	}
	var r int
	switch {
	case a.isIndex:
		r = cmp.Compare(a.index, b.index)
	case a.astral || b.astral:
		r = compareUTF16(a.key, b.key)
	default:
		// Without code points above U+FFFF, UTF-8 byte order (lone
		// surrogates included) is UTF-16 code unit order.
		r = bytes.Compare(a.key, b.key)
	}
	if r != 0 {
		return r
	}
	return cmp.Compare(a.ord, b.ord)
}

func sameKey(a, b *member) bool {
	if a.isIndex || b.isIndex {
		return a.isIndex == b.isIndex && a.index == b.index
	}
	return bytes.Equal(a.key, b.key)
}

// compareUTF16 compares two generalised UTF-8 strings by their UTF-16
// code units, as Array.prototype.sort does by default.
func compareUTF16(a, b []byte) int {
	// Skip the common prefix, backing up to the start of a code point. The
	// prefix is shared, so a continuation byte at i in a means that a code
	// point is split at i in both strings.
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	for i > 0 && i < len(a) && a[i]&0xC0 == 0x80 {
		i--
	}
	a, b = a[i:], b[i:]
	var ua, ub [2]uint16
	var na, nb int // units of the current code point not yet compared
	var pa, pb int // index of the next unit to compare in ua, ub
	for {
		if na == 0 && len(a) == 0 || nb == 0 && len(b) == 0 {
			aEnd := na == 0 && len(a) == 0
			bEnd := nb == 0 && len(b) == 0
			switch {
			case aEnd && bEnd:
				return 0
			case aEnd:
				return -1
			default:
				return 1
			}
		}
		if na == 0 {
			na, a = utf16Units(a, &ua)
			pa = 0
		}
		if nb == 0 {
			nb, b = utf16Units(b, &ub)
			pb = 0
		}
		if x, y := ua[pa], ub[pb]; x != y {
			return cmp.Compare(x, y)
		}
		pa, na = pa+1, na-1
		pb, nb = pb+1, nb-1
	}
}

// utf16Units decodes the first code point of s (generalised UTF-8, known to
// be well formed) into UTF-16 code units.
func utf16Units(s []byte, u *[2]uint16) (int, []byte) {
	ch := s[0]
	switch {
	case ch < 0x80:
		u[0] = uint16(ch)
		return 1, s[1:]
	case ch < 0xE0:
		u[0] = uint16(ch&0x1F)<<6 | uint16(s[1]&0x3F)
		return 1, s[2:]
	case ch < 0xF0:
		u[0] = uint16(ch&0x0F)<<12 | uint16(s[1]&0x3F)<<6 | uint16(s[2]&0x3F)
		return 1, s[3:]
	default:
		r := rune(ch&0x07)<<18 | rune(s[1]&0x3F)<<12 | rune(s[2]&0x3F)<<6 | rune(s[3]&0x3F)
		r -= 0x10000
		u[0] = uint16(0xD800 + r>>10)
		u[1] = uint16(0xDC00 + r&0x3FF)
		return 2, s[4:]
	}
}

// number validates the number at c.pos and writes it as ECMAScript's
// Number::toString of the double JSON.parse makes of it.
func (c *canonicalizer) number(dst []byte) ([]byte, error) {
	raw := c.raw
	start := c.pos
	i := start
	if raw[i] == '-' {
		i++
	}
	intStart := i
	if i < len(raw) && raw[i] == '0' {
		i++
	} else if i < len(raw) && '1' <= raw[i] && raw[i] <= '9' {
		for i < len(raw) && '0' <= raw[i] && raw[i] <= '9' {
			i++
		}
	} else {
		c.pos = i
		return dst, c.fail("invalid number")
	}
	intDigits := i - intStart
	simple := true
	if i < len(raw) && raw[i] == '.' {
		simple = false
		i++
		d := i
		for i < len(raw) && '0' <= raw[i] && raw[i] <= '9' {
			i++
		}
		if i == d {
			c.pos = i
			return dst, c.fail("invalid number: no digits after '.'")
		}
	}
	if i < len(raw) && (raw[i] == 'e' || raw[i] == 'E') {
		simple = false
		i++
		if i < len(raw) && (raw[i] == '+' || raw[i] == '-') {
			i++
		}
		d := i
		for i < len(raw) && '0' <= raw[i] && raw[i] <= '9' {
			i++
		}
		if i == d {
			c.pos = i
			return dst, c.fail("invalid number: no digits in exponent")
		}
	}
	c.pos = i
	lit := raw[start:i]
	// Fast path: an integer of at most 15 digits is exact in a double and
	// prints as itself (-0 prints as 0).
	if simple && intDigits <= 15 {
		if lit[0] == '-' && lit[1] == '0' {
			return append(dst, '0'), nil
		}
		return append(dst, lit...), nil
	}
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(lit), len(lit)), 64)
	if err != nil {
		// The literal is valid, so this is overflow to ±Infinity, which
		// JSON.stringify writes as null.
		return append(dst, "null"...), nil
	}
	return appendNumber(dst, f), nil
}

// appendNumber appends ECMAScript's Number::toString(f) (radix 10) for
// a finite f.
func appendNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0') // both +0 and -0
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	// e is [-]d[.ddd]e±xx: shortest round-trip digits, as ES requires.
	if e[0] == '-' {
		dst = append(dst, '-')
		e = e[1:]
	}
	var digits [20]byte
	k := 0
	j := 0
	for ; e[j] != 'e'; j++ {
		if e[j] != '.' {
			digits[k] = e[j]
			k++
		}
	}
	j++ // 'e'
	neg := e[j] == '-'
	j++
	exp := 0
	for ; j < len(e); j++ {
		exp = exp*10 + int(e[j]-'0')
	}
	if neg {
		exp = -exp
	}
	n := exp + 1 // the decimal point sits after n digits
	d := digits[:k]
	switch {
	case k <= n && n <= 21:
		dst = append(dst, d...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, d[:n]...)
		dst = append(dst, '.')
		dst = append(dst, d[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, d...)
	default:
		dst = append(dst, d[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 < 0 {
			dst = append(dst, '-')
			dst = strconv.AppendInt(dst, int64(1-n), 10)
		} else {
			dst = append(dst, '+')
			dst = strconv.AppendInt(dst, int64(n-1), 10)
		}
	}
	return dst
}
