#!/usr/bin/env bash
# install-litewitness.sh: install litewitness and witnessctl (filippo.io/torchwood,
# a real C2SP tlog-witness) that internal/litewitness starts for the witness tests
# and scripts/demo.sh --witness, into the project-local, gitignored .tools/bin.
#
#   scripts/install-litewitness.sh
#
# Needs only the Go module proxy (go install). Does nothing if both binaries
# exist (delete them to reinstall). litewitness keeps its key in an ssh-agent:
# ssh-agent, ssh-add and ssh-keygen come from openssh-client.
# AUDITPIPE_TOOLS_BIN=<dir> installs elsewhere (internal/litewitness then needs
# AUDITPIPE_LITEWITNESS=<dir>/litewitness).
set -euo pipefail

cd "$(dirname "$0")/.."

readonly version=v0.6.1
readonly mod=filippo.io/torchwood
bindir=${AUDITPIPE_TOOLS_BIN:-$PWD/.tools/bin}

log() { printf 'install-litewitness: %s\n' "$*" >&2; }

if [[ -e $bindir/litewitness && -e $bindir/witnessctl ]]; then
	log "$bindir/litewitness and witnessctl already exist; nothing to do"
	exit 0
fi

mkdir -p "$bindir"
log "go install $mod/cmd/{litewitness,witnessctl}@$version into $bindir"
GOBIN=$bindir go install "$mod/cmd/litewitness@$version" "$mod/cmd/witnessctl@$version"
command -v ssh-agent >/dev/null || log "warning: ssh-agent not found: install openssh-client (litewitness keeps its key in an ssh-agent)"
log "installed $bindir/litewitness and $bindir/witnessctl ($version)"
