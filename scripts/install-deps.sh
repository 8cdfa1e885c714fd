#!/usr/bin/env bash
# Installs the Debian packages Freshet needs, only those missing; apt-get update runs once, and only if needed.
set -euo pipefail

packages=(
  postgresql-15
  postgresql-15-cron
  postgresql-15-pgtap
  postgresql-15-plpgsql-check
  postgresql-15-wal2json
  postgresql-client-15
  libpq-dev
  postgresql-server-dev-15
  pkg-config
  util-linux
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$package")
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  # Debian's postgresql package would start a system cluster; Freshet runs its own clusters instead.
  "${sudo[@]}" mkdir -p /etc/postgresql-common
  if [[ ! -f /etc/postgresql-common/createcluster.conf ]] || ! grep -q '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
    echo 'create_main_cluster = false' | "${sudo[@]}" tee -a /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v swift >/dev/null || { echo "swift is not on PATH: install Swift 6 (https://www.swift.org/install)" >&2; exit 1; }
