#!/usr/bin/env bash
# Installs the system packages cellgrid needs to run and test: PostgreSQL,
# redis-server, prometheus (for promtool, which checks deploy/prometheus)
# and chromium (the ops console's browser test) (Debian/Ubuntu). As root it installs them with apt-get; as a
# normal user it prints the exact command to run. It never starts a service:
# cellgrid starts its own private servers in a data folder.
set -euo pipefail

missing=()
have_pg=false
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && have_pg=true
done
command -v postgres >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1 && have_pg=true
$have_pg || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)

if ! command -v go >/dev/null 2>&1; then
  echo "Go is not installed: install Go 1.26 from https://go.dev/dl/ (or your distribution)" >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${missing[*]}"
  sh -c "$cmd"
else
  echo "missing system packages: ${missing[*]}" >&2
  echo "install them with: sudo sh -c '$cmd'" >&2
  exit 1
fi
