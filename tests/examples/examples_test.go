// Package examples runs every file in examples/ and the install script as a
// user would (issue 13 item 1): scripts/install.sh into a temporary root,
// the cron drain under `env -i` with cron's PATH, the systemd units' scripts
// with the units' environment, fanout.sh with the metrics ports that
// examples/prometheus/prometheus.yml scrapes, all against a real
// VictoriaLogs (internal/vlogs) and the file sink. readme_test.go does the same
// for README's command blocks. Nothing here is skipped with -short: these
// are the files users copy, and they must not rot.
package examples

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/auditpipe/auditpipe/internal/vlogs"
)

var (
	root   string // the repository
	prefix string // scripts/install.sh PREFIX=prefix (no DESTDIR): paths inside name it
	bin    string // prefix/bin
	share  string // prefix/share/auditpipe
)

func TestMain(m *testing.M) {
	var err error
	root, err = filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	tmp, err := os.MkdirTemp("", "auditpipe-examples-")
	if err != nil {
		panic(err)
	}
	prefix = filepath.Join(tmp, "prefix")
	cmd := exec.Command("scripts/install.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PREFIX="+prefix, "DESTDIR=", "UNITDIR="+filepath.Join(prefix, "lib/systemd/system"))
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "scripts/install.sh: %v\n%s", err, out)
		os.Exit(1)
	}
	bin = filepath.Join(prefix, "bin")
	share = filepath.Join(prefix, "share/auditpipe")
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// sh runs a bash script with the installed binaries first on PATH.
func sh(t *testing.T, dir, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", "set -euo pipefail\n"+script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// genDB writes n sample records into dir/name.
func genDB(t *testing.T, dir, name string, n int) string {
	t.Helper()
	sh(t, dir, fmt.Sprintf("audit-sample --count %d | audit-append --db %s --quiet", n, name))
	return filepath.Join(dir, name)
}

// cursor returns the committed seq of exporter in db, or -1 if none.
func cursor(t *testing.T, db, exporter string) int {
	t.Helper()
	out := sh(t, filepath.Dir(db), fmt.Sprintf("sqlite3 %q \"select last_seq from audit_export_cursor where exporter_name='%s'\"", db, exporter))
	s := strings.TrimSpace(out)
	if s == "" {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("cursor %s: %q", exporter, out)
	}
	return n
}

// archived counts the records in a --dir --gzip archive.
func archived(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		if strings.HasSuffix(p, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			b, _ = io.ReadAll(zr)
		}
		n += bytes.Count(b, []byte(`"recordHash"`))
		return nil
	})
	return n
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// unitLines returns the Key=value settings of a unit file.
func unitLines(t *testing.T, path string) [][2]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kv [][2]string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' || l[0] == ';' || l[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: not Key=value: %q", path, l)
		}
		kv = append(kv, [2]string{k, v})
	}
	return kv
}

var units = []string{"auditpipe-ship@.service", "auditpipe-ack@.service", "auditpipe-kafka@.service"}

// TestInstallDestdir installs as a package build would (DESTDIR, the default
// PREFIX) and checks that every executable path each unit names, and every
// script those run, is there.
func TestInstallDestdir(t *testing.T) {
	dest := t.TempDir()
	cmd := exec.Command("scripts/install.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "DESTDIR="+dest, "PREFIX=", "UNITDIR=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("DESTDIR=%s scripts/install.sh: %v\n%s", dest, err, out)
	}
	cmds, _ := filepath.Glob(filepath.Join(root, "cmd/*/main.go"))
	if len(cmds) < 10 {
		t.Fatalf("%d commands under cmd/", len(cmds))
	}
	for _, c := range cmds {
		p := filepath.Join(dest, "usr/local/bin", filepath.Base(filepath.Dir(c)))
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("not installed as an executable: %s (%v)", p, err)
		}
	}
	execKey := regexp.MustCompile(`^Exec(Start|StartPre|StartPost|Stop|StopPost|Reload|Condition)$`)
	for _, u := range units {
		path := filepath.Join(dest, "usr/local/lib/systemd/system", u)
		n := 0
		for _, kv := range unitLines(t, path) {
			if !execKey.MatchString(kv[0]) {
				continue
			}
			n++
			prog := strings.TrimLeft(strings.Fields(kv[1])[0], "-@:+!")
			if !strings.HasPrefix(prog, "/usr/local/") {
				t.Errorf("%s: %s=%s is not under the prefix", u, kv[0], prog)
			}
			fi, err := os.Stat(filepath.Join(dest, prog))
			if err != nil || fi.Mode()&0o111 == 0 {
				t.Errorf("%s: %s=%s: not installed as an executable under DESTDIR (%v)", u, kv[0], prog, err)
				continue
			}
			// The script's own PATH names the installed binaries.
			b, _ := os.ReadFile(filepath.Join(dest, prog))
			if !bytes.Contains(b, []byte(`PATH="${AUDITPIPE_BIN:-/usr/local/bin}:$PATH"`)) {
				t.Errorf("%s does not put /usr/local/bin on PATH", prog)
			}
		}
		if n == 0 {
			t.Errorf("%s has no ExecStart", u)
		}
	}
	for _, f := range []string{"drain-once.sh", "fanout.sh", "follow-service.sh", "ack-service.sh", "prod.env.example", "kafka-producer.sh", "kafka.env.example"} {
		if _, err := os.Stat(filepath.Join(dest, "usr/local/share/auditpipe", f)); err != nil {
			t.Error(err)
		}
	}
}

// envFile reads prod.env.example.
func envFile(t *testing.T) map[string]string {
	b, err := os.ReadFile(filepath.Join(share, "prod.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			env[k] = v
		}
	}
	return env
}

// TestUnitsWritableDB: the ship unit reads a WAL database, whose reader
// must create the -shm file beside it while the writer is stopped, so the
// database's directory is not read-only to either unit.
func TestUnitsWritableDB(t *testing.T) {
	dbDir := filepath.Dir(envFile(t)["DB"])
	if dbDir == "." {
		t.Fatal("prod.env.example sets no DB")
	}
	for _, u := range units {
		rw := false
		for _, kv := range unitLines(t, filepath.Join(prefix, "lib/systemd/system", u)) {
			for _, p := range strings.Fields(kv[1]) {
				p = strings.TrimLeft(p, "-+")
				under := p == dbDir || strings.HasPrefix(dbDir, strings.TrimSuffix(p, "/")+"/")
				switch kv[0] {
				case "ReadOnlyPaths", "InaccessiblePaths":
					if under {
						t.Errorf("%s: %s=%s covers the database's directory %s: a WAL reader cannot create its -shm (unable to open database file (14), exit 5, restart loop)", u, kv[0], p, dbDir)
					}
				case "ReadWritePaths":
					rw = rw || under
				}
			}
		}
		if !rw {
			t.Errorf("%s: ProtectSystem=strict and no ReadWritePaths for %s", u, dbDir)
		}
	}
}

// TestSystemdAnalyzeVerify runs systemd-analyze verify on an instance of
// each installed unit (it checks that the executables exist).
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd)")
	}
	dir := t.TempDir()
	var args []string
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join(prefix, "lib/systemd/system", u))
		if err != nil {
			t.Fatal(err)
		}
		inst := strings.Replace(u, "@.", "@prod.", 1)
		if err := os.WriteFile(filepath.Join(dir, inst), b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "./"+inst)
	}
	cmd := exec.Command(sa, append([]string{"verify"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// cronLine returns the crontab line of drain-once.sh's header, with the
// line after it if the line is continued (which it must not be).
func cronLine(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(root, "examples/pipelines/drain-once.sh"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		l = strings.TrimSpace(strings.TrimPrefix(l, "#"))
		if strings.HasPrefix(l, "*/") {
			if strings.HasSuffix(l, `\`) {
				t.Fatalf("the crontab line in drain-once.sh is continued with \\ (cron has no continuation):\n%s\n%s", lines[i], lines[i+1])
			}
			return l
		}
	}
	t.Fatal("drain-once.sh has no crontab line")
	return ""
}

// cron runs a crontab line's command as cron does: /bin/sh -c, an empty
// environment but HOME, LOGNAME, SHELL and PATH=/usr/bin:/bin.
func cron(t *testing.T, command, home string) (int, string) {
	cmd := exec.Command("env", "-i", "PATH=/usr/bin:/bin", "HOME="+home, "LOGNAME=root", "SHELL=/bin/sh", "/bin/sh", "-c", command)
	cmd.Dir = home
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

// TestCronDrain runs drain-once.sh's crontab line exactly as cron would,
// into the real VictoriaLogs and into the file sink. Substitutions: the
// database, the HEC URL (VictoriaLogs), the token file, the lock directory
// and the install prefix are the test's; the line is otherwise as written.
func TestCronDrain(t *testing.T) {
	line := cronLine(t)
	f := strings.Fields(line)
	if len(f) < 6 {
		t.Fatalf("crontab line has no command: %q", line)
	}
	for _, x := range f[:5] {
		if !regexp.MustCompile(`^[0-9*/,-]+$`).MatchString(x) {
			t.Fatalf("crontab line %q: %q is not a time field", line, x)
		}
	}
	if strings.Contains(line, "%") {
		t.Fatalf("crontab line has %% (cron turns it into a newline): %q", line)
	}
	command := strings.Join(f[5:], " ")
	if readme, _ := os.ReadFile(filepath.Join(root, "README.md")); !strings.Contains(string(readme), "\n      "+line+"\n") {
		t.Errorf("README.md does not show drain-once.sh's crontab line as written:\n%s", line)
	}
	s := vlogs.Require(t)
	dir := t.TempDir()
	db := genDB(t, dir, "audit.db", 2000)
	tok := filepath.Join(dir, "hec.token")
	os.WriteFile(tok, []byte("test-token\n"), 0o600)
	lockDir := filepath.Join(dir, "run")
	sub := strings.NewReplacer(
		"DB=/var/lib/declaragent/audit.db", "DB="+db,
		"HEC_URL=https://hec.example.com:8088", "HEC_URL="+s.URL(),
		"HEC_TOKEN_FILE=/etc/auditpipe/hec.token", "HEC_TOKEN_FILE="+tok,
		"AUDITPIPE_LOCK_DIR=/run/auditpipe", "AUDITPIPE_LOCK_DIR="+lockDir,
		"/usr/local/share/auditpipe/", share+"/",
	)
	got := sub.Replace(command)
	for _, w := range []string{db, s.URL(), tok, lockDir, share} {
		if !strings.Contains(got, w) {
			t.Fatalf("the crontab line changed: substituting gave %q (no %s)", got, w)
		}
	}
	state := "QUARANTINE=" + filepath.Join(dir, "state/q.ndjson") + " "
	got = state + got

	code, out := cron(t, got, dir)
	if code != 0 || out != "" {
		t.Fatalf("first cron run: exit %d, output (cron would mail it):\n%s", code, out)
	}
	ctx := context.Background()
	if n, err := s.WaitCount(ctx, "*", 2000, 20*time.Second); err != nil || n != 2000 {
		t.Fatalf("VictoriaLogs holds %d records, want 2000 (%v)", n, err)
	}
	if c := cursor(t, db, "splunk:cron"); c != 2000 {
		t.Fatalf("cursor splunk:cron at %d, want 2000", c)
	}
	// Again: nothing to ship, nothing said.
	sh(t, dir, "audit-sample --count 10 | audit-append --db audit.db --quiet")
	if code, out := cron(t, got, dir); code != 0 || out != "" {
		t.Fatalf("second cron run: exit %d, output:\n%s", code, out)
	}
	if c := cursor(t, db, "splunk:cron"); c != 2010 {
		t.Fatalf("cursor at %d after the second run, want 2010", c)
	}

	// A previous drain still running (here, a reader holding the exporter):
	// this run is skipped, exit 0, one line naming the holder.
	holder := exec.Command(filepath.Join(bin, "audit-read"), "--db", db, "--from-cursor", "splunk:cron", "--follow", "--quiet", "--lock-dir", lockDir)
	holder.Stdout = io.Discard
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Signal(syscall.SIGTERM); holder.Wait() }()
	lock := filepath.Join(lockDir, "audit.db.splunk:cron.lock")
	waitFor(t, "the holder's lock file", 10*time.Second, func() bool { _, err := os.Stat(lock); return err == nil })
	time.Sleep(300 * time.Millisecond)
	code, out = cron(t, got, dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 1 || !strings.Contains(out, "drain-once: skipped") || !strings.Contains(out, fmt.Sprintf("pid %d", holder.Process.Pid)) {
		t.Errorf("overlapping cron run: exit %d, want 0 and one line naming pid %d:\n%s", code, holder.Process.Pid, out)
	}
	holder.Process.Signal(syscall.SIGTERM)
	holder.Wait()

	// The SIEM unreachable: the run gives up (exit 8), says what happened and
	// that nothing is lost.
	dead := strings.Replace(got, s.URL(), "http://127.0.0.1:1", 1)
	sh(t, dir, "audit-sample --count 5 | audit-append --db audit.db --quiet")
	code, out = cron(t, "GIVE_UP_AFTER=2s "+dead, dir)
	if code != 8 || !strings.Contains(out, "drain-once: splunk:cron failed, exit 8") || !strings.Contains(out, "audit-ship") {
		t.Errorf("unreachable SIEM: exit %d, want 8 with the stages' messages:\n%s", code, out)
	}
	if c := cursor(t, db, "splunk:cron"); c != 2010 {
		t.Errorf("cursor moved to %d with the SIEM unreachable", c)
	}

	// The file sink: HEC_URL unset, a second exporter on this database. Its
	// first run is refused (a typo must not re-ship everything) with the
	// fix; done as the script's header says, it runs.
	fileCmd := regexp.MustCompile(`HEC_URL=\S+ HEC_TOKEN_FILE=\S+ `).ReplaceAllString(got, "ARCHIVE="+filepath.Join(dir, "archive")+" ")
	code, out = cron(t, fileCmd, dir)
	if code != 2 || !strings.Contains(out, "audit-cursor create") || !strings.Contains(out, "drain-once: file:cron failed, exit 2") {
		t.Fatalf("a new exporter on a database with cursors: exit %d, want 2 naming audit-cursor create:\n%s", code, out)
	}
	sh(t, dir, `audit-cursor create --db "$DB" file:cron`, "DB="+db)
	code, out = cron(t, fileCmd, dir)
	if code != 0 || out != "" {
		t.Fatalf("file-sink cron run: exit %d, output:\n%s", code, out)
	}
	if n := archived(t, filepath.Join(dir, "archive")); n != 2015 {
		t.Errorf("archive holds %d records, want 2015", n)
	}
	if c := cursor(t, db, "file:cron"); c != 2015 {
		t.Errorf("cursor file:cron at %d, want 2015", c)
	}
}

// TestReadOnlyDBDir: a reader denied the database's directory (the old ship
// unit's ReadOnlyPaths) is told which directory and what to change.
func TestReadOnlyDBDir(t *testing.T) {
	dir := t.TempDir()
	dbDir := filepath.Join(dir, "declaragent")
	os.Mkdir(dbDir, 0o755)
	genDB(t, dbDir, "audit.db", 10)
	var cmd *exec.Cmd
	read := fmt.Sprintf("%s/audit-read --db %s/audit.db >/dev/null", bin, dbDir)
	if os.Geteuid() == 0 {
		// Root writes anywhere: make it a read-only mount, as systemd does.
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skip("root without unshare(1): cannot make a read-only directory")
		}
		cmd = exec.Command("unshare", "-m", "bash", "-c", fmt.Sprintf("mount --bind %s %s && mount -o remount,bind,ro %s && %s", dbDir, dbDir, dbDir, read))
	} else {
		os.Chmod(dbDir, 0o555)
		defer os.Chmod(dbDir, 0o755)
		cmd = exec.Command("bash", "-c", read)
	}
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 5 {
		t.Fatalf("audit-read in a read-only directory: %v, want exit 5\n%s", err, out)
	}
	for _, w := range []string{"the directory " + dbDir + " is not writable", "audit.db-shm", "ReadWritePaths=" + dbDir} {
		if !strings.Contains(string(out), w) {
			t.Errorf("the message does not say %q:\n%s", w, out)
		}
	}
}

// promTargets returns prometheus.yml's auditpipe targets: port -> binary.
func promTargets(t *testing.T) map[int]string {
	b, err := os.ReadFile(filepath.Join(root, "examples/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`targets: \['127\.0\.0\.1:(\d+)'\]\s*\n\s*labels: \{binary: (audit-[a-z]+)\}`)
	m := map[int]string{}
	for _, x := range re.FindAllStringSubmatch(string(b), -1) {
		p, _ := strconv.Atoi(x[1])
		m[p] = x[2]
	}
	return m
}

// scrape checks that port serves /metrics for binary and exporter.
func scrape(port int, binary, exporter string) error {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("port %d: %s", port, resp.Status)
	}
	// Each stage's own series: what distinguishes it from the others.
	own := map[string]string{
		"audit-read":   "auditpipe_stage_last_seq",
		"audit-verify": "auditpipe_verify_breaks_total",
		"audit-batch":  "auditpipe_batches_total",
		"audit-ship":   "declaragent_audit_export_acked_total",
		"audit-ack":    "auditpipe_export_lag_records",
	}[binary]
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, own) && strings.Contains(l, `exporter="`+exporter+`"`) {
			return nil
		}
	}
	return fmt.Errorf("port %d (prometheus.yml: %s of %s) serves no %s{exporter=%q}", port, binary, exporter, own, exporter)
}

// TestFanoutPorts runs fanout.sh into VictoriaLogs (its Splunk HEC and
// Elasticsearch bulk intakes) and scrapes every target of prometheus.yml:
// each port is served by the stage and exporter the file says, and no two
// stages collide. promtool checks the file. Substitutions: the URLs
// (VictoriaLogs), the credential files, RUN and STATE (temporary), and
// METRICS_LINGER=0s so the stop does not wait 30 s.
func TestFanoutPorts(t *testing.T) {
	if pt, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(pt, "check", "config", filepath.Join(root, "examples/prometheus/prometheus.yml")).CombinedOutput(); err != nil {
			t.Errorf("promtool check config: %v\n%s", err, out)
		}
	} else if os.Getenv("CI") == "true" {
		t.Error("promtool not installed (CI=true)")
	}
	targets := promTargets(t)
	want := map[int]string{}
	for base := range map[int]bool{9464: true, 9474: true} {
		for i, b := range []string{"audit-read", "audit-verify", "audit-batch", "audit-ship", "audit-ack"} {
			want[base+i] = b
		}
	}
	if fmt.Sprint(targets) != fmt.Sprint(want) {
		t.Fatalf("prometheus.yml targets %v, want %v", targets, want)
	}
	s := vlogs.Require(t)
	dir := t.TempDir()
	db := genDB(t, dir, "audit.db", 1000)
	os.WriteFile(filepath.Join(dir, "tok"), []byte("t\n"), 0o600)
	cmd := exec.Command(filepath.Join(share, "fanout.sh"))
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir,
		"DB=" + db, "RUN=" + filepath.Join(dir, "run"), "STATE=" + filepath.Join(dir, "state"),
		"HEC_URL=" + s.URL(), "HEC_TOKEN_FILE=" + filepath.Join(dir, "tok"),
		"ES_URL=" + s.URL() + "/insert/elasticsearch", "ES_API_KEY_FILE=" + filepath.Join(dir, "tok"),
		"METRICS_LINGER=0s", "AUDITPIPE_LOCK_DIR=" + filepath.Join(dir, "run")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	waitFor(t, "both cursors at 1000", 40*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("fanout.sh ended early: %v\n%s", err, stderr.String())
		default:
		}
		return cursor(t, db, "splunk:prod") == 1000 && cursor(t, db, "elastic:prod") == 1000
	})
	for port, b := range targets {
		exp := "splunk:prod"
		if port >= 9474 {
			exp = "elastic:prod"
		}
		if err := scrape(port, b, exp); err != nil {
			t.Error(err)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("fanout.sh after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("fanout.sh did not stop on SIGTERM\n%s", stderr.String())
	}
}

// TestSystemdScripts runs what the two units run, with the units'
// environment (their Environment= lines, prod.env.example with the test's
// substitutions, systemd's default PATH without the prefix), and scrapes
// the ports METRICS_PORT gives them.
func TestSystemdScripts(t *testing.T) {
	s := vlogs.Require(t)
	dir := t.TempDir()
	db := genDB(t, dir, "audit.db", 500)
	os.WriteFile(filepath.Join(dir, "tok"), []byte("t\n"), 0o600)
	run := filepath.Join(dir, "run")
	os.Mkdir(run, 0o700)
	env := envFile(t)
	env["DB"], env["HEC_URL"], env["HEC_TOKEN_FILE"] = db, s.URL(), filepath.Join(dir, "tok")
	if env["METRICS_PORT"] != "9464" {
		t.Fatalf("prod.env.example: METRICS_PORT=%s, but prometheus.yml scrapes splunk:prod at 9464", env["METRICS_PORT"])
	}
	base := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "METRICS_LINGER=0s"}
	for k, v := range env {
		base = append(base, k+"="+v)
	}
	start := func(unit string) (*exec.Cmd, *bytes.Buffer, chan error) {
		var ex []string
		for _, kv := range unitLines(t, filepath.Join(prefix, "lib/systemd/system", unit)) {
			switch kv[0] {
			case "Environment":
				for _, a := range strings.Fields(kv[1]) {
					a = strings.ReplaceAll(a, "%i", "prod")
					a = strings.ReplaceAll(a, "/run/auditpipe", run)
					a = strings.ReplaceAll(a, "/var/lib/auditpipe", filepath.Join(dir, "state"))
					ex = append(ex, a)
				}
			case "ExecStart":
				ex = append(ex, "EXEC="+kv[1])
			}
		}
		var prog string
		e := append([]string{}, base...)
		for _, a := range ex {
			if p, ok := strings.CutPrefix(a, "EXEC="); ok {
				prog = p
			} else {
				e = append(e, a)
			}
		}
		os.MkdirAll(filepath.Join(dir, "state"), 0o700)
		c := exec.Command(prog)
		c.Env, c.Dir = e, dir
		var buf bytes.Buffer
		c.Stderr = &buf
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			t.Fatalf("%s: %v", prog, err)
		}
		ch := make(chan error, 1)
		go func() { ch <- c.Wait() }()
		t.Cleanup(func() { syscall.Kill(-c.Process.Pid, syscall.SIGKILL) })
		return c, &buf, ch
	}
	// TestFanoutPorts used the same block: wait until it is free.
	waitFor(t, "ports 9464-9468 free", 15*time.Second, func() bool {
		for p := 9464; p <= 9468; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				return false
			}
			l.Close()
		}
		return true
	})
	ack, ackErr, ackDone := start("auditpipe-ack@.service")
	ship, shipErr, shipDone := start("auditpipe-ship@.service")
	waitFor(t, "cursor splunk:prod at 500", 30*time.Second, func() bool {
		select {
		case err := <-shipDone:
			t.Fatalf("follow-service.sh ended: %v\n%s\nack:\n%s", err, shipErr.String(), ackErr.String())
		case err := <-ackDone:
			t.Fatalf("ack-service.sh ended: %v\n%s", err, ackErr.String())
		default:
		}
		return cursor(t, db, "splunk:prod") == 500
	})
	for i, b := range []string{"audit-read", "audit-verify", "audit-batch", "audit-ship", "audit-ack"} {
		if err := scrape(9464+i, b, "splunk:prod"); err != nil {
			t.Error(err)
		}
	}
	// systemd's stop: SIGTERM to every process of the unit.
	for _, c := range []*exec.Cmd{ship, ack} {
		syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	for name, ch := range map[string]chan error{"ship": shipDone, "ack": ackDone} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s unit's script after SIGTERM: %v\n%s%s", name, err, shipErr.String(), ackErr.String())
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not stop on SIGTERM", name)
		}
	}
}

// TestResumeAfterCrash runs examples/pipelines/resume-after-crash.sh as
// written (it builds bin/ in the clone if it is missing).
func TestResumeAfterCrash(t *testing.T) {
	cmd := exec.Command(filepath.Join(root, "examples/pipelines/resume-after-crash.sh"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "distinct records: 50000 of 50000") {
		t.Fatalf("resume-after-crash.sh: %v\n%s", err, out)
	}
}

// TestEveryExampleRun: every file in examples/ is run or checked by a test
// of this package or of tests/ops; a new file must be added here.
func TestEveryExampleRun(t *testing.T) {
	by := map[string]string{
		"grafana/auditpipe.json":                     "tests/ops (TestDashboard)",
		"pipelines/ack-service.sh":                   "TestSystemdScripts",
		"pipelines/drain-once.sh":                    "TestCronDrain",
		"pipelines/fanout.sh":                        "TestFanoutPorts",
		"pipelines/follow-service.sh":                "TestSystemdScripts",
		"pipelines/resume-after-crash.sh":            "TestResumeAfterCrash",
		"pipelines/systemd/auditpipe-ack@.service":   "TestInstallDestdir, TestUnitsWritableDB, TestSystemdAnalyzeVerify, TestSystemdScripts",
		"pipelines/systemd/auditpipe-ship@.service":  "TestInstallDestdir, TestUnitsWritableDB, TestSystemdAnalyzeVerify, TestSystemdScripts",
		"pipelines/systemd/prod.env.example":         "TestSystemdScripts, TestUnitsWritableDB",
		"pipelines/kafka-producer.sh":                "TestKafkaProducerScript",
		"pipelines/systemd/auditpipe-kafka@.service": "TestInstallDestdir, TestUnitsWritableDB, TestSystemdAnalyzeVerify, TestKafkaProducerScript",
		"pipelines/systemd/kafka.env.example":        "TestKafkaProducerScript",
		"prometheus/alerts.yml":                      "tests/ops (promtool check rules, a real Prometheus)",
		"prometheus/alerts_test.yml":                 "tests/ops (promtool test rules)",
		"prometheus/prometheus.yml":                  "TestFanoutPorts (promtool check config, every target scraped), tests/ops",
	}
	dir := filepath.Join(root, "examples")
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if by[rel] == "" {
			t.Errorf("examples/%s is run by no test: run it in tests/examples and list it here", rel)
		}
		delete(by, rel)
		return nil
	})
	for f := range by {
		t.Errorf("examples/%s is listed but gone", f)
	}
}
