package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

// TestReadmeInstall runs README's install line as written, from the root of
// the repository as a clone has it, into an empty GOBIN, and checks that
// every binary under cmd/ is installed and answers -h.
func TestReadmeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary: skipped with -short")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^    (go install \S+)`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no indented `go install` line")
	}
	line := string(m[1])
	if line != "go install ./cmd/..." {
		t.Fatalf("README's install line is %q; this test runs %q (a clone has no published module to fetch)", line, "go install ./cmd/...")
	}
	gobin := t.TempDir()
	cmd := exec.Command(goTool(t), "install", "./cmd/...")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	dirs, err := filepath.Glob("../cmd/*/main.go")
	if err != nil || len(dirs) < 10 {
		t.Fatalf("cmd/*/main.go: %v, %d found", err, len(dirs))
	}
	for _, d := range dirs {
		name := filepath.Base(filepath.Dir(d))
		bin := filepath.Join(gobin, name)
		var stderr bytes.Buffer
		c := exec.Command(bin, "-h")
		c.Stderr = &stderr
		if err := c.Run(); err != nil {
			t.Errorf("%s -h: %v\n%s", name, err, stderr.Bytes())
			continue
		}
		if !bytes.Contains(stderr.Bytes(), []byte("usage: "+name)) {
			t.Errorf("%s -h prints no usage line:\n%s", name, stderr.Bytes())
		}
	}
}

func goTool(t *testing.T) string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no go command on PATH or in %s", p)
	}
	return p
}
