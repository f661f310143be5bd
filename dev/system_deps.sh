#!/usr/bin/env bash
# Install the Debian packages that `make test` drives for real, or say how.
# Usage: dev/system_deps.sh COMMAND:PACKAGE...  (a command found on PATH needs nothing)
# As root with apt-get, the missing packages are installed; otherwise the script fails and
# prints the one command to run. CHROMIUM=/path/to/chrome stands in for the chromium command.
set -euo pipefail

missing=()
for pair in "$@"; do
  command_name=${pair%%:*} package=${pair#*:}
  if [ "$command_name" = chromium ] && [ -n "${CHROMIUM:-}" ] && [ -x "${CHROMIUM}" ]; then
    continue
  fi
  command -v "$command_name" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian packages for the tests: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "make test needs these system packages: ${missing[*]}" >&2
echo "Install them with: sudo apt-get install -y ${missing[*]}" >&2
echo "(or point CHROMIUM at an existing Chromium or Chrome binary)" >&2
exit 1
