#!/usr/bin/env bash
# Builds Nomad v1.6.3 and Consul v1.16.3 -- their last MPL-2.0 releases, never
# newer -- from the Go module proxy into a cache folder outside the clone, so
# later runs (and CI on the same machine) reuse them. Idempotent: when both
# binaries exist and report the right version it only prints their paths.
#
#   build/hashistack.sh            # prints NOMAD=<path> and CONSUL=<path>
#   CELLGRID_TOOLS=/opt/t build/hashistack.sh
set -euo pipefail

NOMAD_VERSION=1.6.3
CONSUL_VERSION=1.16.3
# The nomad module zip lacks api/; this pseudo-version is the api at v1.6.3.
NOMAD_API_PIN=v0.0.0-20231030125810-e0497bff1437
# Consul 1.16.3 needs envoyextensions v0.4.1 (MPL-2.0); later ones are not open source.
CONSUL_ENVOYEXT_PIN=v0.4.1

tools="${CELLGRID_TOOLS:-$HOME/.cache/cellgrid/tools}"
mkdir -p "$tools"
nomad="$tools/nomad-$NOMAD_VERSION"
consul="$tools/consul-$CONSUL_VERSION"

command -v go >/dev/null 2>&1 || { echo "Go is not installed: install Go 1.26 from https://go.dev/dl/" >&2; exit 1; }

# A lock so two concurrent `make test` runs do not build twice.
exec 9>"$tools/.lock"
flock 9

modcopy() { # module@version -> writable copy of its source
  local dir src
  src=$(go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] || { echo "go mod download $1 failed" >&2; exit 1; }
  dir=$(mktemp -d "$tools/src.XXXXXX")
  cp -r "$src/." "$dir/"
  chmod -R u+w "$dir"
  echo "$dir"
}

# has BIN WANT: BIN exists and its `version` names WANT. The output is read
# whole first: with pipefail, `… | grep -q` fails when grep exits at the
# first line and the agent dies of SIGPIPE writing the rest (Consul prints
# three lines), which rebuilt Consul on every run.
has() {
  local out
  [ -x "$1" ] || return 1
  out=$("$1" version 2>/dev/null) || return 1
  case "$out" in *"$2"*) return 0 ;; esac
  return 1
}

if ! has "$nomad" "Nomad v$NOMAD_VERSION"; then
  echo "building Nomad v$NOMAD_VERSION into $nomad (a few minutes, once)" >&2
  src=$(modcopy "github.com/hashicorp/nomad@v$NOMAD_VERSION")
  (
    cd "$src"
    go mod edit -dropreplace github.com/hashicorp/nomad/api
    go mod edit -require "github.com/hashicorp/nomad/api@$NOMAD_API_PIN"
    GOFLAGS=-mod=mod go build -o "$nomad.tmp" .
  )
  mv "$nomad.tmp" "$nomad"
  rm -rf "$src"
fi

if ! has "$consul" "Consul v$CONSUL_VERSION"; then
  echo "building Consul v$CONSUL_VERSION into $consul (a few minutes, once)" >&2
  src=$(modcopy "github.com/hashicorp/consul@v$CONSUL_VERSION")
  (
    cd "$src"
    for r in $(go mod edit -json | sed -n 's/.*"Path": "\(github.com\/hashicorp\/consul\/[^"]*\)".*/\1/p' | sort -u); do
      go mod edit -dropreplace "$r" 2>/dev/null || true
    done
    go mod edit -require "github.com/hashicorp/consul/envoyextensions@$CONSUL_ENVOYEXT_PIN"
    GONOSUMDB=github.com/hashicorp/consul/envoyextensions GOFLAGS=-mod=mod go build -o "$consul.tmp" .
  )
  mv "$consul.tmp" "$consul"
  rm -rf "$src"
fi

echo "NOMAD=$nomad"
echo "CONSUL=$consul"
