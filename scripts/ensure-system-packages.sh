#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing:
# redis-server and the PostgreSQL server binaries. Runs apt-get only as root.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql postgresql-contrib)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "sluice: missing system packages: ${missing[*]} (install with: apt-get install -y ${missing[*]})" >&2
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "sluice: not root or no apt-get; install them yourself and re-run." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq "${missing[@]}" >&2
echo "sluice: installed ${missing[*]} with apt-get" >&2
