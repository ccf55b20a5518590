#!/usr/bin/env bash
# install-victorialogs.sh: install the VictoriaLogs server that internal/vlogs starts
# for tests and the demo into the project-local, gitignored .tools/bin.
#
#   scripts/install-victorialogs.sh
#
# Does nothing if the binary already exists (delete it to reinstall). A cold build
# takes about a minute. An ambient GOBIN is ignored on purpose, so the binary
# always lands where internal/vlogs looks; AUDITPIPE_TOOLS_BIN=<dir> installs elsewhere
# (internal/vlogs then needs AUDITPIPE_VICTORIALOGS=<dir>/victoria-logs).
set -euo pipefail

cd "$(dirname "$0")/.."

readonly version=v1.52.1
readonly pkg=github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs
bindir=${AUDITPIPE_TOOLS_BIN:-$PWD/.tools/bin}
bin=$bindir/victoria-logs

log() { printf 'install-victorialogs: %s\n' "$*" >&2; }

if [[ -e $bin ]]; then
	log "$bin already exists; nothing to do"
	exit 0
fi

mkdir -p "$bindir"
log "go install $pkg@$version into $bindir"
GOBIN=$bindir go install "$pkg@$version"
# The binary's -version is empty (no release ldflags); the module version is in its build info.
log "installed $bin ($(go version -m "$bin" | awk '$1 == "mod" { print $3; exit }'))"
