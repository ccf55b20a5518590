#!/usr/bin/env bash
# The test suite, on a fresh machine as on yours: one command.
#
#   scripts/test.sh [go test flags, e.g. -short or -run X]
#
# 1. Installs what the tests need when it is missing: the sqlite3 CLI (the
#    other-tool writer of the compatibility tests), Prometheus and promtool
#    (tests/ops, the alert rules) and Node.js (the reference canonical form
#    in lib/canon and lib/jsonstr), through apt-get when run as root on
#    Debian/Ubuntu (otherwise it says what to install); and VictoriaLogs (the
#    real log store the tests ship to) with scripts/install-victorialogs.sh
#    and litewitness + witnessctl (the real C2SP witness of the witness
#    tests; its key lives in ssh-agent, from openssh-client) with
#    scripts/install-litewitness.sh (go install into .tools/bin, no root
#    needed).
# 2. go vet; under CI=true also `go mod tidy -diff` (go.mod must be tidy).
# 3. Every test (unit, fuzz seed corpora, testscript pipelines, the real
#    VictoriaLogs round trips, and with no arguments the tests behind a
#    build tag), through internal/tools/testsummary: go test's
#    own "ok"/"FAIL" lines and the output of failed tests, then every skipped
#    test with its reason and the counts. Under CI=true a skipped test fails
#    the run: in CI every test must run.
#
# AUDITPIPE_NO_INSTALL=1 skips step 1.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

log() { printf '== %s\n' "$*" >&2; }

install_deps() {
	local -a need=()
	command -v sqlite3 >/dev/null || need+=(sqlite3)
	{ command -v promtool && command -v prometheus; } >/dev/null || need+=(prometheus)
	command -v node >/dev/null || need+=(nodejs)
	command -v ssh-agent >/dev/null || need+=(openssh-client)
	if ((${#need[@]})); then
		if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
			log "apt-get install ${need[*]}"
			export DEBIAN_FRONTEND=noninteractive
			apt-get update -qq
			apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
		else
			log "missing: ${need[*]} (not root, or no apt-get): the tests that need them will skip; install them with: sudo apt-get install ${need[*]}"
		fi
	fi
	scripts/install-victorialogs.sh
	scripts/install-litewitness.sh
}

if [[ ${AUDITPIPE_NO_INSTALL:-} != 1 ]]; then
	install_deps
fi

log "go vet"
go vet ./...
if [[ ${CI:-} == true ]]; then
	log "go mod tidy -diff (go.mod and go.sum must be tidy)"
	go mod tidy -diff
fi

log "go test"
summary=$(mktemp -d)
trap 'rm -rf "$summary"' EXIT
go build -o "$summary/testsummary" ./internal/tools/testsummary
fail_on_skip=()
[[ ${CI:-} == true ]] && fail_on_skip=(-fail-on-skip)
# The full suite also runs the tests that exist only under a build tag:
# lib/auditdb's C-memory leak test needs libc's allocation counters
# (-tags memory.counters; its first build takes about 30 s more), and
# -tags purego runs string escaping without its vector kernel.
set +e
{
	go test -json -count=1 -timeout 20m "$@" ./...
	echo $? >"$summary/rc"
	if (($# == 0)); then
		go test -json -count=1 -tags memory.counters -run '^TestScanNoLeak$' ./lib/auditdb || echo 1 >"$summary/rc"
		# lib/jsonstr's AVX2 kernel is what runs on this host; its word loop
		# (other platforms, CPUs without AVX2, -tags purego) under the golden
		# tests of the packages that escape strings: Node's JSON.stringify
		# (lib/canon), the record lines (lib/auditdb, audit-read).
		go test -json -count=1 -tags purego ./lib/jsonstr ./lib/canon ./lib/auditdb ./stage/auditread || echo 1 >"$summary/rc"
	fi
} | "$summary/testsummary" "${fail_on_skip[@]}"
sum_rc=$?
set -e
if [[ $(cat "$summary/rc") != 0 || $sum_rc != 0 ]]; then
	exit 1
fi
