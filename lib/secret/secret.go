// Package secret resolves secret references (env:NAME, file:PATH,
// exec:COMMAND, and agent.yaml's ${secret:…} spelling of them): the way
// every binary is given a token. A literal value is refused, nothing here
// ever prints a secret (errors, fmt, slog and JSON show the reference), and
// a Source resolves again on demand so a rotated secret needs no restart.
// The rules of each scheme: docs/design.md, "lib/secret".

package secret

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// MaxFileSize is the largest secret file Resolve reads (64 KiB).
const MaxFileSize = 64 << 10

// Sentinel errors, matched with errors.Is.
var (
	// ErrLiteral: the reference has no known scheme, so it is probably the
	// secret itself (or a scheme this version does not know).
	ErrLiteral = errors.New("not an env:NAME, file:PATH or exec:COMMAND reference, and a literal secret is refused: " +
		"command lines are visible to every user on the host (ps, /proc/PID/cmdline); " +
		"put the secret in an environment variable (env:NAME) or a file readable only by this user (file:PATH)")
	// ErrUnsupported: a known scheme this version cannot resolve.
	ErrUnsupported = errors.New("secret scheme not supported; use env:NAME, file:PATH or exec:COMMAND")
	// ErrResolver: a ${secret:…} reference to one of Declaragent's own
	// resolvers (vault, or a bare name), which auditpipe cannot use.
	ErrResolver = errors.New("Declaragent secret resolver not available in auditpipe")
	// ErrNotSet: the environment variable of an env: reference is not set.
	ErrNotSet = errors.New("environment variable is not set")
	// ErrEmpty: the reference resolved to an empty value.
	ErrEmpty = errors.New("secret is empty")
	// ErrTooLarge: the file of a file: reference is larger than MaxFileSize.
	ErrTooLarge = errors.New("secret file is too large")
)

// Error is a failure to resolve a reference. Ref is the reference when it
// is safe to show (an env: or file: reference), else empty: a refused
// literal is never kept.
type Error struct {
	Ref string
	Err error
}

func (e *Error) Error() string {
	if e.Ref == "" {
		return "resolve secret: " + e.Err.Error()
	}
	return "resolve secret " + e.Ref + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Secret is a resolved secret. Its zero value is empty. Value returns the
// secret; every other way of printing a Secret shows only its reference.
type Secret struct {
	ref   string
	value string
}

// Value returns the secret itself. Pass it only to the request that needs it.
func (s Secret) Value() string { return s.value }

// Ref returns the reference the secret was resolved from.
func (s Secret) Ref() string { return s.ref }

// String returns the reference, e.g. "file:/run/secrets/hec".
func (s Secret) String() string { return s.ref }

// GoString returns the reference, so %#v does not print the value.
func (s Secret) GoString() string { return fmt.Sprintf("secret.Secret(%q)", s.ref) }

// Format prints the reference under every verb (%v, %+v, %s, %q, %x, ...).
func (s Secret) Format(f fmt.State, verb rune) { formatRef(f, verb, s.ref) }

// LogValue makes slog show the reference.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.ref) }

// MarshalText returns the reference, so JSON or YAML dumps of a config show
// where the secret comes from, not what it is.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.ref), nil }

func formatRef(f fmt.State, verb rune, ref string) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", ref)
	default:
		io.WriteString(f, ref)
	}
}

// DefaultExecTimeout is how long an exec: command may run by default.
const DefaultExecTimeout = 10 * time.Second

// Options tune how references are resolved. The zero value is the default.
type Options struct {
	// ExecTimeout bounds an exec: command (default DefaultExecTimeout).
	ExecTimeout time.Duration
}

// Resolve resolves ref once with the default Options. See the package
// comment for the syntax. Errors are of type *Error and never contain a
// secret.
func Resolve(ctx context.Context, ref string) (Secret, error) {
	return ResolveWith(ctx, ref, Options{})
}

// ResolveWith resolves ref once. Errors are of type *Error (or ctx's error
// as it is) and never contain a secret.
func ResolveWith(ctx context.Context, ref string, opt Options) (Secret, error) {
	if err := ctx.Err(); err != nil {
		return Secret{}, err
	}
	inner, err := unwrap(ref)
	if err != nil {
		return Secret{}, err
	}
	scheme, arg, ok := strings.Cut(inner, ":")
	if !ok {
		return Secret{}, &Error{Err: ErrLiteral}
	}
	var v string
	switch scheme {
	case "env":
		v, err = resolveEnv(arg)
	case "file":
		v, err = resolveFile(arg)
	case "exec":
		timeout := opt.ExecTimeout
		if timeout <= 0 {
			timeout = DefaultExecTimeout
		}
		v, err = resolveExec(ctx, arg, timeout)
		if err != nil && ctx.Err() != nil {
			return Secret{}, ctx.Err()
		}
	default:
		// Not echoed: "abc:def" may well be a literal token with a colon.
		return Secret{}, &Error{Err: ErrLiteral}
	}
	if err != nil {
		return Secret{}, &Error{Ref: ref, Err: err}
	}
	v = strings.TrimRight(v, " \t\r\n")
	if v == "" {
		return Secret{}, &Error{Ref: ref, Err: ErrEmpty}
	}
	return Secret{ref: ref, value: v}, nil
}

// IsReference reports whether ref has the form of a reference this package
// resolves (env:, file:, exec:, or ${secret:…} around one of them), without
// resolving it. A config loader uses it to refuse a literal secret early,
// naming where it was found, without echoing it.
func IsReference(ref string) bool {
	inner, err := unwrap(ref)
	if err != nil {
		return strings.HasPrefix(ref, "${secret:") // a reference, if one auditpipe cannot use
	}
	scheme, _, ok := strings.Cut(inner, ":")
	return ok && (scheme == "env" || scheme == "file" || scheme == "exec")
}

// unwrap maps Declaragent's ${secret:SCHEME:ARG} spelling onto SCHEME:ARG.
// Anything else is returned as it is.
func unwrap(ref string) (string, error) {
	const open = "${secret:"
	if !strings.HasPrefix(ref, open) {
		return ref, nil
	}
	if !strings.HasSuffix(ref, "}") {
		return "", &Error{Ref: ref, Err: errors.New("a ${secret:…} reference must end with }")}
	}
	inner := ref[len(open) : len(ref)-1]
	scheme, arg, ok := strings.Cut(inner, ":")
	switch {
	case ok && (scheme == "env" || scheme == "file" || scheme == "exec"):
		return inner, nil
	case ok && scheme == "vault":
		return "", &Error{Ref: ref, Err: fmt.Errorf("%w: auditpipe has no Vault client of its own; "+
			"fetch the secret with the vault CLI through exec:, e.g. exec:vault kv get -field=token %s "+
			"(VAULT_ADDR and VAULT_TOKEN come from the environment)", ErrResolver, vaultPath(arg))}
	}
	return "", &Error{Ref: ref, Err: fmt.Errorf("%w: ${secret:%s} names a secret only Declaragent's own resolver knows; "+
		"use ${secret:env:NAME}, ${secret:file:PATH} or ${secret:exec:COMMAND} (or env:NAME, file:PATH, exec:COMMAND)",
		ErrResolver, inner)}
}

// vaultPath is the path of a vault reference for the advice, or a
// placeholder when it is empty.
func vaultPath(arg string) string {
	if arg = strings.TrimSpace(arg); arg == "" || strings.ContainsAny(arg, " \t'\"") {
		return "secret/PATH"
	}
	return arg
}

func resolveEnv(name string) (string, error) {
	if name == "" {
		return "", errors.New("no variable name after env:")
	}
	v, ok := os.LookupEnv(name)
	if !ok {
		return "", ErrNotSet
	}
	return v, nil
}

func resolveFile(path string) (string, error) {
	if path == "" {
		return "", errors.New("no path after file:")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", stripPathErr(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return "", stripPathErr(err)
	}
	if n > MaxFileSize {
		return "", fmt.Errorf("%w (over %d bytes)", ErrTooLarge, MaxFileSize)
	}
	return buf.String(), nil
}

// stripPathErr drops the path from an *os.PathError (Error.Ref already
// names it) and keeps the cause, which errors.Is still matches
// (fs.ErrNotExist, fs.ErrPermission).
func stripPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// Source is a secret reference that can be resolved again, for a
// long-running sink whose token may be rotated while it runs. It is safe
// for concurrent use. Like Secret, it prints as its reference.
type Source struct {
	ref string
	opt Options

	mu     sync.RWMutex
	cur    Secret
	loaded bool
}

// NewSource resolves ref once, so a bad reference fails at startup, and
// returns a Source holding the result.
func NewSource(ctx context.Context, ref string) (*Source, error) {
	return NewSourceWith(ctx, ref, Options{})
}

// NewSourceWith is NewSource with Options, used by every later Refresh too.
func NewSourceWith(ctx context.Context, ref string, opt Options) (*Source, error) {
	s, err := ResolveWith(ctx, ref, opt)
	if err != nil {
		return nil, err
	}
	return &Source{ref: ref, opt: opt, cur: s, loaded: true}, nil
}

// Get returns the current value: the one NewSource or the last successful
// Refresh resolved. It does no I/O once a value is held. (A Source made as
// a bare struct literal has no reference and fails with ErrLiteral.)
func (s *Source) Get(ctx context.Context) (string, error) {
	s.mu.RLock()
	v, ok := s.cur.value, s.loaded
	s.mu.RUnlock()
	if ok {
		return v, nil
	}
	if _, err := s.Refresh(ctx); err != nil {
		return "", err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur.value, nil
}

// Refresh resolves the reference again and reports whether the value
// changed. On error the previous value stays current: a file caught in the
// middle of a non-atomic rewrite does not wipe a working token.
//
// Callers that must know whether the token they used is still current
// (several requests failing with 401 at once, each calling Refresh) should
// compare the value they sent with Get after Refresh rather than rely on
// changed, which only the first caller sees as true.
func (s *Source) Refresh(ctx context.Context) (changed bool, err error) {
	n, err := ResolveWith(ctx, s.ref, s.opt)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed = !s.loaded || n.value != s.cur.value
	s.cur, s.loaded = n, true
	return changed, nil
}

// String returns the reference, e.g. "file:/run/secrets/hec".
func (s *Source) String() string {
	if s == nil {
		return "<nil>"
	}
	return s.ref
}

// GoString returns the reference, so %#v does not print the value.
func (s *Source) GoString() string { return fmt.Sprintf("&secret.Source(%q)", s.String()) }

// Format prints the reference under every verb.
func (s *Source) Format(f fmt.State, verb rune) { formatRef(f, verb, s.String()) }

// LogValue makes slog show the reference.
func (s *Source) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText returns the reference.
func (s *Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
