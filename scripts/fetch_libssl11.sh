#!/usr/bin/env bash
# FiftyOne's bundled mongod (fiftyone-db 0.4.5) links against libcrypto.so.1.1, which Debian 12
# no longer ships. Fetch Debian bullseye's libssl1.1 into a project-local folder (never touching
# the system) so that LD_LIBRARY_PATH can point mongod at it. Idempotent.
set -euo pipefail
DEST="${1:-.cache/libssl11}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
if [ -e "$DEST/root/usr/lib/x86_64-linux-gnu/libcrypto.so.1.1" ]; then
  echo "libssl1.1 already present in $DEST"; exit 0
fi
# Nothing to do where the system already has it.
if ldconfig -p 2>/dev/null | grep -q 'libcrypto.so.1.1 '; then
  echo "system libcrypto.so.1.1 found"; exit 0
fi
MIRROR="$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
  | grep -oE "https?://[^ ]+" | head -1 || true)"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$DEST/apt/lists/partial" "$DEST/apt/cache/archives/partial" "$DEST/apt/parts"
echo "deb [trusted=yes] ${MIRROR%/} bullseye main" > "$DEST/apt/sources.list"
APT_OPTS=(-o "Dir::Etc::SourceList=$DEST/apt/sources.list" -o "Dir::Etc::SourceParts=$DEST/apt/parts"
  -o "Dir::State::Lists=$DEST/apt/lists" -o "Dir::Cache=$DEST/apt/cache" -o "APT::Get::AllowUnauthenticated=true"
  -o "Acquire::AllowInsecureRepositories=true" -o "Debug::NoLocking=1")
apt-get "${APT_OPTS[@]}" update -qq
(cd "$DEST" && apt-get "${APT_OPTS[@]}" download libssl1.1 -qq)
dpkg -x "$DEST"/libssl1.1_*.deb "$DEST/root"
ls "$DEST/root/usr/lib/x86_64-linux-gnu/libcrypto.so.1.1"
