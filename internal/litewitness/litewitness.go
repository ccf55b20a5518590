// Package litewitness starts a real C2SP tlog-witness for tests: litewitness
// from filippo.io/torchwood (scripts/install-litewitness.sh puts it and
// witnessctl in .tools/bin), with its Ed25519 key in a dedicated ssh-agent,
// listening on 127.0.0.1, the log configured with witnessctl. Everything is
// stopped when the test ends.
package litewitness

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/lib/witness"
)

// Witness is a running litewitness.
type Witness struct {
	Name string
	VKey string // cosignature/v1 vkey
	URL  string
	DB   string
	bin  string
}

// binDir finds .tools/bin: $AUDITPIPE_LITEWITNESS's directory, or the
// module root's .tools/bin.
func binDir() string {
	if p := os.Getenv("AUDITPIPE_LITEWITNESS"); p != "" {
		return filepath.Dir(p)
	}
	dir, _ := os.Getwd()
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".tools", "bin")
		}
	}
	return ".tools/bin"
}

// Start starts a litewitness named name that knows the log origin with
// the log's note verifier key logVKey. Without litewitness or ssh-agent the
// test is skipped (failed under CI=true: there every test must run).
func Start(t testing.TB, name, origin, logVKey string) *Witness {
	t.Helper()
	bin := binDir()
	lw, wc := filepath.Join(bin, "litewitness"), filepath.Join(bin, "witnessctl")
	for _, p := range []string{lw, wc} {
		if _, err := os.Stat(p); err != nil {
			missing(t, fmt.Sprintf("%s not installed: run scripts/install-litewitness.sh", p))
		}
	}
	for _, c := range []string{"ssh-agent", "ssh-add", "ssh-keygen"} {
		if _, err := exec.LookPath(c); err != nil {
			missing(t, c+" not found: install openssh-client")
		}
	}
	// The agent's socket path must be short (sun_path).
	dir, err := os.MkdirTemp("/tmp", "lw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	key, sock, db := filepath.Join(dir, "k"), filepath.Join(dir, "s"), filepath.Join(dir, "w.db")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	waitFor(t, func() bool { _, err := os.Stat(sock); return err == nil })
	add := exec.Command("ssh-add", key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	pub := readSSHPub(t, key+".pub")
	sum := sha256.Sum256(pub)
	run(t, wc, "add-log", "-db", db, "-origin", origin)
	run(t, wc, "add-key", "-db", db, "-origin", origin, "-key", logVKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	w := &Witness{Name: name, VKey: witness.VerifierKey(name, pub), URL: "http://" + addr, DB: db, bin: bin}
	cmd := exec.Command(lw, "-db", db, "-name", name, "-key", hex.EncodeToString(sum[:]), "-ssh-agent", sock, "-listen", addr)
	logf, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Logf("litewitness log:\n%s", data)
		}
	})
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return w
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func waitFor(t testing.TB, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatal("litewitness or its ssh-agent did not start within 10 s")
}

// readSSHPub returns the Ed25519 key of an OpenSSH public key file.
func readSSHPub(t testing.TB, path string) ed25519.PublicKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	raw, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		t.Fatal(err)
	}
	// string "ssh-ed25519", string key
	n := binary.BigEndian.Uint32(raw)
	raw = raw[4+n:]
	m := binary.BigEndian.Uint32(raw)
	return ed25519.PublicKey(raw[4 : 4+m])
}
