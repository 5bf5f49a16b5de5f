#!/usr/bin/env bash
# Builds mubeng (github.com/kitabisa/mubeng) into .tools/bin/mubeng for bench/proxy-gateway.bench.ts.
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
