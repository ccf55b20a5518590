#!/usr/bin/env bash
# Build and install auditpipe: the binaries, the systemd units and the
# scripts they run, and the cron drain.
#
#   scripts/install.sh                          # into /usr/local (as root)
#   PREFIX=/opt/auditpipe scripts/install.sh    # another prefix
#   DESTDIR=/tmp/root scripts/install.sh        # staged (packaging): files under
#                                               # $DESTDIR, naming $PREFIX inside
#
# Puts in place ($PREFIX defaults to /usr/local, $UNITDIR to
# $PREFIX/lib/systemd/system, which systemd reads for /usr/local; for another
# prefix set UNITDIR=/etc/systemd/system):
#   $PREFIX/bin/audit-*                               every binary under cmd/
#   $PREFIX/share/auditpipe/follow-service.sh         run by auditpipe-ship@.service
#   $PREFIX/share/auditpipe/ack-service.sh            run by auditpipe-ack@.service
#   $PREFIX/share/auditpipe/drain-once.sh, fanout.sh  cron drain, fan-out
#   $PREFIX/share/auditpipe/prod.env.example          copy to /etc/auditpipe/prod.env
#   $PREFIX/share/auditpipe/kafka-producer.sh, kafka.env.example   auditpipe-kafka@.service
#   $UNITDIR/auditpipe-ship@.service, auditpipe-ack@.service, auditpipe-kafka@.service
# The units and scripts name $PREFIX where the examples say /usr/local.
# Needs go (1.26) and install(1); run from anywhere in a clone.
set -euo pipefail
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
case $PREFIX in /*) ;; *) echo "install.sh: PREFIX must be an absolute path, not $PREFIX" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
go build -trimpath -o "$build/" ./cmd/...

bindir=$DESTDIR$PREFIX/bin share=$DESTDIR$PREFIX/share/auditpipe units=$DESTDIR$UNITDIR
install -d -m 0755 "$bindir" "$share" "$units"
install -m 0755 "$build"/audit-* "$bindir/"
# The examples name /usr/local; an installed copy names $PREFIX.
subst() { sed -e "s#/usr/local/bin#$PREFIX/bin#g" -e "s#/usr/local/share/auditpipe#$PREFIX/share/auditpipe#g" "$1"; }
for f in follow-service.sh ack-service.sh drain-once.sh fanout.sh kafka-producer.sh; do
  subst "examples/pipelines/$f" >"$build/$f"
  install -m 0755 "$build/$f" "$share/$f"
done
install -m 0644 examples/pipelines/systemd/prod.env.example "$share/prod.env.example"
install -m 0644 examples/pipelines/systemd/kafka.env.example "$share/kafka.env.example"
for u in auditpipe-ship@.service auditpipe-ack@.service auditpipe-kafka@.service; do
  subst "examples/pipelines/systemd/$u" >"$build/$u"
  install -m 0644 "$build/$u" "$units/$u"
done
echo "installed $(ls "$bindir" | grep -c '^audit-') binaries in $bindir, scripts in $share, units in $units" >&2
