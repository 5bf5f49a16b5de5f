#!/usr/bin/env bash
# Puts mubeng (github.com/mubeng/mubeng) at .tools/bin/mubeng for bench/proxy-gateway.bench.ts: copied
# from ../shared/peers/mubeng/ when present (see its README), built from source otherwise.
# `go install ...@latest` can fail on the module proxy's deprecation lookup, so a throwaway module
# requires a pinned version and builds the command from it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${MUBENG_VERSION:-v0.22.0}"
OUT="$ROOT/.tools/bin/mubeng"
if [ -x "$OUT" ] && [ "${FORCE:-0}" != "1" ]; then
	echo "mubeng already built: $OUT ($("$OUT" --version 2>&1 | head -1 || true))"
	exit 0
fi
# The shared peers folder carries a prebuilt binary (its module versions are not served by the Go
# module proxy reachable here): copy it when present, build from source otherwise.
PEER="${MUBENG_PEER_DIR:-$ROOT/../shared/peers/mubeng}"
if [ -x "$PEER/mubeng" ]; then
	mkdir -p "$(dirname "$OUT")"
	install -m 0755 "$PEER/mubeng" "$OUT"
	echo "copied $PEER/mubeng to $OUT"
	exit 0
fi
if [ -f "$PEER/mubeng-src.tar.gz" ] && command -v go >/dev/null; then
	WORK="$(mktemp -d)"
	trap 'rm -rf "$WORK"' EXIT
	tar xzf "$PEER/mubeng-src.tar.gz" -C "$WORK"
	SRC="$(find "$WORK" -maxdepth 2 -name go.mod -printf '%h\n' | head -1)"
	[ -f "$PEER/go.mod" ] && cp "$PEER/go.mod" "$PEER/go.sum" "$SRC/"
	mkdir -p "$(dirname "$OUT")"
	(cd "$SRC" && go build -o "$OUT" .)
	echo "built $OUT from $PEER/mubeng-src.tar.gz"
	exit 0
fi
command -v go >/dev/null || { echo "go is required to build mubeng" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
go mod init saguaro.local/mubeng-build >/dev/null
cat > tools.go <<GO
//go:build tools

package tools

import _ "github.com/kitabisa/mubeng/cmd/mubeng"
GO
go mod edit -require="github.com/kitabisa/mubeng@${VERSION}"
GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
GOFLAGS=-mod=mod go get "github.com/kitabisa/mubeng@${VERSION}"
mkdir -p "$(dirname "$OUT")"
GOFLAGS=-mod=mod go build -o "$OUT" github.com/kitabisa/mubeng/cmd/mubeng
echo "built $OUT"
