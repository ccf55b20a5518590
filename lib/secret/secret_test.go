package secret

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const tok = "s3cr3t-T0KEN-value"

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolve(t *testing.T) {
	t.Setenv("AP_SECRET_OK", tok)
	t.Setenv("AP_SECRET_NL", tok+"\n")
	t.Setenv("AP_SECRET_EMPTY", "")
	t.Setenv("AP_SECRET_BLANK", " \n")
	os.Unsetenv("AP_SECRET_UNSET")

	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := file("plain", tok)
	nl := file("nl", tok+"\n")
	crlf := file("crlf", tok+"\r\n")
	trailing := file("trailing", tok+" \t\n\n")
	leading := file("leading", "  "+tok+"\n")
	inner := file("inner", "user:pa ss\n")
	empty := file("empty", "")
	blank := file("blank", "\n")
	big := file("big", strings.Repeat("x", MaxFileSize+1))
	max := file("max", strings.Repeat("x", MaxFileSize))
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		ref     string
		want    string
		wantErr error // matched with errors.Is; nil means success
	}{
		{ref: "env:AP_SECRET_OK", want: tok},
		{ref: "env:AP_SECRET_NL", want: tok},
		{ref: "env:AP_SECRET_UNSET", wantErr: ErrNotSet},
		{ref: "env:AP_SECRET_EMPTY", wantErr: ErrEmpty},
		{ref: "env:AP_SECRET_BLANK", wantErr: ErrEmpty},
		{ref: "env:", wantErr: errAny},
		{ref: "file:" + plain, want: tok},
		{ref: "file:" + nl, want: tok},
		{ref: "file:" + crlf, want: tok},
		{ref: "file:" + trailing, want: tok},
		{ref: "file:" + leading, want: "  " + tok},
		{ref: "file:" + inner, want: "user:pa ss"},
		{ref: "file:" + max, want: strings.Repeat("x", MaxFileSize)},
		{ref: "file:" + empty, wantErr: ErrEmpty},
		{ref: "file:" + blank, wantErr: ErrEmpty},
		{ref: "file:" + big, wantErr: ErrTooLarge},
		{ref: "file:" + missing, wantErr: fs.ErrNotExist},
		{ref: "file:" + dir, wantErr: errAny}, // a directory
		{ref: "file:", wantErr: errAny},
		{ref: tok, wantErr: ErrLiteral},
		{ref: "", wantErr: ErrLiteral},
		{ref: "abc:" + tok, wantErr: ErrLiteral},
		{ref: "Env:AP_SECRET_OK", wantErr: ErrLiteral}, // schemes are case-sensitive
		{ref: "vault:secret/hec", wantErr: ErrLiteral},
		{ref: "exec:echo " + tok, want: tok},
		{ref: "exec:printf '%s\\n\\n' '" + tok + "'", want: tok},
		{ref: "exec:", wantErr: errAny},
		{ref: "exec:   ", wantErr: errAny},
		{ref: "exec:sh -c 'exit 0'", wantErr: ErrEmpty},
		{ref: "exec:" + missing, wantErr: errAny},
		{ref: "exec:echo 'unterminated", wantErr: errAny},
		{ref: "${secret:env:AP_SECRET_OK}", want: tok},
		{ref: "${secret:file:" + nl + "}", want: tok},
		{ref: "${secret:exec:echo " + tok + "}", want: tok},
		{ref: "${secret:env:AP_SECRET_UNSET}", wantErr: ErrNotSet},
		{ref: "${secret:vault:secret/hec}", wantErr: ErrResolver},
		{ref: "${secret:HEC_TOKEN}", wantErr: ErrResolver},
		{ref: "${secret:env:AP_SECRET_OK", wantErr: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			s, err := Resolve(context.Background(), tt.ref)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if s.Value() != tt.want {
					t.Fatalf("Value = %q, want %q", s.Value(), tt.want)
				}
				if s.String() != tt.ref || s.Ref() != tt.ref {
					t.Fatalf("String = %q, Ref = %q, want %q", s.String(), s.Ref(), tt.ref)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve succeeded with %q, want error %v", s.Value(), tt.wantErr)
			}
			if tt.wantErr != errAny && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err %T is not *Error", err)
			}
			if strings.Contains(err.Error(), tok) {
				t.Fatalf("error leaks the secret: %v", err)
			}
			if s != (Secret{}) {
				t.Fatalf("failed Resolve returned a non-zero Secret")
			}
		})
	}
}

// errAny matches any error in the table above.
var errAny = errors.New("any error")

func TestResolveLiteralExplains(t *testing.T) {
	_, err := Resolve(context.Background(), tok)
	for _, want := range []string{"env:NAME", "file:PATH", "visible"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestResolveFileErrorNamesRefOnce(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope")
	_, err := Resolve(context.Background(), "file:"+p)
	if got := strings.Count(err.Error(), p); got != 1 {
		t.Fatalf("path appears %d times in %q, want 1", got, err)
	}
}

func TestResolveCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t.Setenv("AP_SECRET_OK", tok)
	if _, err := Resolve(ctx, "env:AP_SECRET_OK"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestNoLeakWhenPrinted(t *testing.T) {
	ref := "file:" + writeFile(t, "tok", tok+"\n", 0o600)
	s, err := Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "secret", s, "source", src)
	j, _ := json.Marshal(map[string]any{"s": s, "src": src})
	outs := []string{buf.String(), string(j)}
	for _, v := range []any{s, &s, src} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			outs = append(outs, fmt.Sprintf(verb, v))
		}
		outs = append(outs, fmt.Sprint(v), fmt.Sprintf("%v", struct{ X any }{v}))
	}
	for _, o := range outs {
		if strings.Contains(o, tok) {
			t.Errorf("printed form leaks the secret: %s", o)
		}
		if !strings.Contains(o, filepath.Base(ref)) && !strings.Contains(o, fmt.Sprintf("%x", ref)) {
			t.Errorf("printed form %q does not show the reference", o)
		}
	}
}

func TestSourceRefresh(t *testing.T) {
	ctx := context.Background()
	p := writeFile(t, "tok", "one\n", 0o600)
	src, err := NewSource(ctx, "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	get := func() string {
		t.Helper()
		v, err := src.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := get(); v != "one" {
		t.Fatalf("Get = %q", v)
	}
	steps := []struct {
		content     *string // nil: remove the file
		wantChanged bool
		wantErr     bool
		wantValue   string
	}{
		{content: ptr("one"), wantChanged: false, wantValue: "one"},
		{content: ptr("two\n"), wantChanged: true, wantValue: "two"},
		{content: ptr(""), wantErr: true, wantValue: "two"}, // half-written file: keep the old value
		{content: nil, wantErr: true, wantValue: "two"},     // removed: keep the old value
		{content: ptr("three"), wantChanged: true, wantValue: "three"},
	}
	for i, st := range steps {
		if st.content == nil {
			os.Remove(p)
		} else if err := os.WriteFile(p, []byte(*st.content), 0o600); err != nil {
			t.Fatal(err)
		}
		changed, err := src.Refresh(ctx)
		if (err != nil) != st.wantErr || changed != st.wantChanged {
			t.Fatalf("step %d: Refresh = %v, %v; want changed=%v err=%v", i, changed, err, st.wantChanged, st.wantErr)
		}
		if v := get(); v != st.wantValue {
			t.Fatalf("step %d: Get = %q, want %q", i, v, st.wantValue)
		}
	}
}

func ptr(s string) *string { return &s }

func TestNewSourceFailsEarly(t *testing.T) {
	os.Unsetenv("AP_SECRET_UNSET")
	if _, err := NewSource(context.Background(), "env:AP_SECRET_UNSET"); !errors.Is(err, ErrNotSet) {
		t.Fatalf("err = %v, want ErrNotSet", err)
	}
	var zero Source
	if _, err := zero.Get(context.Background()); !errors.Is(err, ErrLiteral) {
		t.Fatalf("zero Source Get err = %v, want ErrLiteral", err)
	}
}

func TestSourceConcurrent(t *testing.T) {
	ctx := context.Background()
	p := writeFile(t, "tok", "a", 0o600)
	src, err := NewSource(ctx, "file:"+p)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				if i == 0 && j%10 == 0 {
					// Atomic replace, as a secret manager does.
					tmp := p + ".tmp"
					os.WriteFile(tmp, []byte(fmt.Sprint("v", j)), 0o600)
					os.Rename(tmp, p)
				}
				if _, err := src.Refresh(ctx); err != nil {
					t.Error(err)
					return
				}
				if v, err := src.Get(ctx); err != nil || v == "" {
					t.Errorf("Get = %q, %v", v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestExecFailureMasksOutput(t *testing.T) {
	p := writeFile(t, "tok", tok+"\n", 0o600)
	ref := "exec:sh -c 'cat " + p + "; echo denied for $(cat " + p + ") >&2; exit 3'"
	_, err := Resolve(context.Background(), ref)
	if err == nil {
		t.Fatal("Resolve succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, tok) {
		t.Fatalf("error leaks the command's output: %v", err)
	}
	for _, want := range []string{"exit status 3", "denied for [output]", "exec:sh -c"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
}

func TestExecSuccessDropsStderr(t *testing.T) {
	s, err := Resolve(context.Background(), "exec:sh -c 'echo "+tok+"; echo noise >&2'")
	if err != nil || s.Value() != tok {
		t.Fatalf("Resolve = %q, %v", s.Value(), err)
	}
}

func TestExecTimeout(t *testing.T) {
	start := time.Now()
	_, err := ResolveWith(context.Background(), "exec:sh -c 'sleep 30'", Options{ExecTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestExecCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := Resolve(ctx, "exec:sleep 30")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestExecTooLarge(t *testing.T) {
	_, err := Resolve(context.Background(), fmt.Sprintf("exec:sh -c 'yes | head -c %d'", MaxFileSize+10))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestExecRefresh(t *testing.T) {
	p := writeFile(t, "tok", "one\n", 0o600)
	src, err := NewSource(context.Background(), "exec:cat "+p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err := src.Refresh(context.Background())
	if v, _ := src.Get(context.Background()); err != nil || !changed || v != "two" {
		t.Fatalf("Refresh: changed %v, value %q, %v", changed, v, err)
	}
}

func TestVaultAdvice(t *testing.T) {
	_, err := Resolve(context.Background(), "${secret:vault:secret/data/hec}")
	if !errors.Is(err, ErrResolver) || !strings.Contains(err.Error(), "exec:vault kv get -field=token secret/data/hec") {
		t.Fatalf("err = %v", err)
	}
}

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"vault kv get -field=token secret/hec", []string{"vault", "kv", "get", "-field=token", "secret/hec"}},
		{"  a\tb  ", []string{"a", "b"}},
		{`sh -c 'echo "$X"; exit 1'`, []string{"sh", "-c", `echo "$X"; exit 1`}},
		{`a "b c" "d\"e" "f\\g" "h\i"`, []string{"a", "b c", `d"e`, `f\g`, `h\i`}},
		{`a\ b c\'d`, []string{"a b", "c'd"}},
		{`'' ""`, []string{"", ""}},
		{`x'y z'w`, []string{"xy zw"}},
	}
	for _, tt := range tests {
		got, err := splitArgs(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`a 'b`, `a "b`, `a "b\"`, "a\nb"} {
		if _, err := splitArgs(bad); err == nil {
			t.Errorf("splitArgs(%q) succeeded", bad)
		}
	}
}

func TestIsReference(t *testing.T) {
	for ref, want := range map[string]bool{
		"env:X": true, "file:/p": true, "exec:vault kv get x": true, "${secret:env:X}": true,
		"${secret:vault:a/b}": true, "${secret:NAME}": true, tok: false, "": false, "abc:def": false, "vault:x": false,
	} {
		if got := IsReference(ref); got != want {
			t.Errorf("IsReference(%q) = %v", ref, got)
		}
	}
}
