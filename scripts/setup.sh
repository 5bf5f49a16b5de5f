#!/usr/bin/env bash
# Installs what Saguaro's tests and demo need on a fresh Debian machine, skipping what is present:
# Node toolchain (npm install brings Node 24), nats-server, redis-server, Chromium, PostgreSQL, and
# FerretDB (the MongoDB wire-protocol server the store's Mongo tests and benches run against, on
# PostgreSQL, built from the Go module proxy), and mongo-java-server (an in-memory MongoDB
# wire-protocol server from Maven Central, the opt-in alternative). Tests start their own servers on
# free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TOOLS="$ROOT/.tools/bin"
mkdir -p "$TOOLS"

log() { printf '[setup] %s\n' "$*"; }

# --- system packages -------------------------------------------------------------------------
missing=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# FerretDB's storage; test/harness/servers.ts runs initdb/postgres from /usr/lib/postgresql/<ver>/bin.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]} (apt)"
	SUDO=""
	[ "$(id -u)" -ne 0 ] && SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# Debian starts redis-server as a service on install; tests start their own on free ports.
	($SUDO systemctl stop redis-server 2>/dev/null || $SUDO service redis-server stop 2>/dev/null || true) >/dev/null
	if [[ " ${missing[*]} " == *" postgresql "* ]]; then
		# Same for the system PostgreSQL cluster (port 5432): stopped, and not started at boot.
		($SUDO systemctl disable --now postgresql 2>/dev/null ||
			{ $SUDO service postgresql stop 2>/dev/null; $SUDO update-rc.d postgresql disable 2>/dev/null; } ||
			true) >/dev/null 2>&1
		if command -v pg_lsclusters >/dev/null 2>&1; then
			pg_lsclusters -h 2>/dev/null | awk '$4 == "online" { print $1, $2 }' | while read -r ver name; do
				$SUDO pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
			done
		fi
	fi
fi
pg_bin=$(compgen -G "/usr/lib/postgresql/*/bin/postgres" | sort -V | tail -1 || true)
[ -n "$pg_bin" ] || { echo "[setup] PostgreSQL binaries missing under /usr/lib/postgresql" >&2; exit 1; }
log "$("$pg_bin" --version)"

# --- node modules (Node 24 comes as the `node` devDependency) ----------------------------------
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	log "npm install (from package-lock.json)"
	# `npm ci` refuses this lock file where the registry lacks some platforms' optional Biome binaries
	# (they are then missing from the lock); `npm install` honours the lock all the same.
	npm install --no-audit --no-fund --loglevel=error
fi
log "node $(node_modules/.bin/node --version)"

# --- FerretDB (MongoDB wire protocol; tests run it on PostgreSQL) -------------------------------
FERRET_VERSION=v1.24.0
if [ ! -x "$TOOLS/ferretdb" ]; then
	command -v go >/dev/null 2>&1 || { echo "[setup] Go is required to build FerretDB" >&2; exit 1; }
	log "building FerretDB $FERRET_VERSION (once; cached in .tools/bin)"
	work=$(mktemp -d)
	# `go install ...@version` consults the module's version list, which the proxy refuses here; a
	# module download of the exact version works. Its build/version/version.txt is generated
	# upstream at release time, so we write it before building.
	dir=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$FERRET_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
	echo "$FERRET_VERSION" >"$work/src/build/version/version.txt"
	(cd "$work/src" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -o "$TOOLS/ferretdb" ./cmd/ferretdb)
	rm -rf "$work"
fi
log "ferretdb $("$TOOLS/ferretdb" --version | head -1)"

# --- gofakes3 (S3-compatible server; the photo storage tests run against it) --------------------
# Built like FerretDB: the exact module version from the Go module proxy, with our small main.go
# (scripts/gofakes3) compiled inside it so the module's go.sum pins the dependencies.
GOFAKES3_VERSION=v1.2.0
if [ ! -x "$TOOLS/gofakes3" ] || [ scripts/gofakes3/main.go -nt "$TOOLS/gofakes3" ]; then
	command -v go >/dev/null 2>&1 || { echo "[setup] Go is required to build gofakes3" >&2; exit 1; }
	log "building gofakes3 $GOFAKES3_VERSION (once; cached in .tools/bin)"
	work=$(mktemp -d)
	dir=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/johannesboyne/gofakes3@$GOFAKES3_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
	mkdir -p "$work/src/cmd/saguaro-s3" && cp scripts/gofakes3/main.go "$work/src/cmd/saguaro-s3/main.go"
	(cd "$work/src" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -o "$TOOLS/gofakes3" ./cmd/saguaro-s3)
	rm -rf "$work"
fi
log "gofakes3 $GOFAKES3_VERSION"

# --- toxiproxy (latency and partitions between regions, and in the chaos suite) ----------------
# test/cluster/regions.test.ts and bench:regions put it between two regions' NATS gateways and
# between a region and Redis. Built like FerretDB, by scripts/build-toxiproxy.sh, into .tools/bin.
bash "$ROOT/scripts/build-toxiproxy.sh"

# --- mongo-java-server (MongoDB wire protocol, in memory; optional stand-in for FerretDB) ------
# The harness uses it when SAGUARO_TEST_MONGO=java (test/harness/servers.ts). Jars from Maven
# Central, launcher compiled with javac from scripts/mongo-java-server/Main.java, into
# .tools/mongo-java-server (skipped when present). Needs a JDK (17+) and Maven.
MJS="$ROOT/.tools/mongo-java-server"
if [ ! -f "$MJS/classes/saguaro/tools/Main.class" ] || [ scripts/mongo-java-server/Main.java -nt "$MJS/classes/saguaro/tools/Main.class" ] ||
	[ scripts/mongo-java-server/pom.xml -nt "$MJS/classes/saguaro/tools/Main.class" ]; then
	if ! command -v javac >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
		log "installing a JDK and Maven (apt) for mongo-java-server"
		SUDO=""
		[ "$(id -u)" -ne 0 ] && SUDO="sudo"
		$SUDO apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends default-jdk-headless maven >/dev/null
	fi
	log "building the mongo-java-server launcher (once; cached in .tools/mongo-java-server)"
	rm -rf "$MJS"
	mvn -q -B -Dstyle.color=never -f scripts/mongo-java-server/pom.xml dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$MJS/lib"
	javac -d "$MJS/classes" -cp "$MJS/lib/*" scripts/mongo-java-server/Main.java
fi
log "mongo-java-server $(ls "$MJS/lib" | sed -n 's/^mongo-java-server-core-\(.*\)\.jar$/\1/p')"
log "ready"
