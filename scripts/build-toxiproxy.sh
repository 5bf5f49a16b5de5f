#!/usr/bin/env bash
# Builds toxiproxy-server (github.com/Shopify/toxiproxy/v2) into .tools/bin/toxiproxy-server for the
# chaos suite (bench/chaos/, `npm run chaos`): network partitions and latency between the workers
# and Redis/NATS. `go install ...@version` consults the module's version list, which the proxy may
# refuse; a module download of the exact version, built in place, works (as setup.sh does for FerretDB).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${TOXIPROXY_VERSION:-v2.12.0}"
OUT="$ROOT/.tools/bin/toxiproxy-server"
if [ -x "$OUT" ] && [ "${FORCE:-0}" != "1" ]; then
	echo "toxiproxy-server already built: $OUT ($("$OUT" -version 2>&1 | head -1 || true))"
	exit 0
fi
command -v go >/dev/null || { echo "go is required to build toxiproxy-server" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'chmod -R u+w "$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT
dir=$(cd "$WORK" && GOFLAGS=-mod=mod go mod download -json "github.com/Shopify/toxiproxy/v2@$VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "could not download github.com/Shopify/toxiproxy/v2@$VERSION" >&2; exit 1; }
cp -r "$dir" "$WORK/src" && chmod -R u+w "$WORK/src"
mkdir -p "$(dirname "$OUT")"
(cd "$WORK/src" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build \
	-ldflags "-X github.com/Shopify/toxiproxy/v2.Version=$VERSION" -o "$OUT" ./cmd/server)
echo "built $OUT ($("$OUT" -version 2>&1 | head -1 || true))"
