package tests

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestStandalone: a clone of the repository is all the tests and the docs
// need. Nothing reads or cites files beside it (../shared was the
// project's working copy of the contract and the golden vectors; they are
// docs/contract.md and lib/chain/testdata now), and every "docs/contract.md
// section N" names a section that exists.
func TestStandalone(t *testing.T) {
	contract, err := os.ReadFile("../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (\d+)\. `).FindAllSubmatch(contract, -1) {
		sections[string(m[1])] = true
	}
	if len(sections) != 5 {
		t.Fatalf("docs/contract.md has sections %v, want 1 to 5", sections)
	}
	forbidden := []string{"../shared/", "/work/shared", "CONTRACTS.md"}
	cite := regexp.MustCompile(`docs/contract\.md\s+section\s+(\d+)`)
	err = filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == ".git" || name == ".tools" || name == "bin" || name == "fuzz" {
				return filepath.SkipDir
			}
			return nil
		}
		if path == "../tests/standalone_test.go" {
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".sh", ".txtar", ".yml", ".yaml", ".service", ".txt", "":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil || bytes.IndexByte(b, 0) >= 0 {
			return err
		}
		for _, f := range forbidden {
			if i := bytes.Index(b, []byte(f)); i >= 0 {
				t.Errorf("%s:%d refers to %s, outside the repository", path, 1+bytes.Count(b[:i], []byte("\n")), f)
			}
		}
		for _, m := range cite.FindAllSubmatch(b, -1) {
			if !sections[string(m[1])] {
				t.Errorf("%s cites %q: docs/contract.md has no such section", path, strings.Join(strings.Fields(string(m[0])), " "))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
