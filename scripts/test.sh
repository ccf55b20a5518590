#!/usr/bin/env bash
# The test suite: vet, then every test (unit, fuzz seed corpora, testscript
# pipelines, the real VictoriaLogs round trips). The README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
go vet ./...
go test -count=1 -timeout 20m "$@" ./...
