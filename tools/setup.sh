#!/usr/bin/env bash
# Install what socklab needs from Debian/Ubuntu packages (never PyPI).
# Quiet and fast when everything is present.  As root it installs what is missing;
# otherwise it prints the exact sudo command and exits 1.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# --NAME: the packages of tools/packages-NAME.txt instead, same rules: --docs for
# `./lab docs`, --vm and --bench for the project's own tests of the Vagrantfile and bench/,
# --vmtest for tools/vm-test.
list="$here/packages.txt"
if [ -n "${1:-}" ]; then
    list="$here/packages-${1#--}.txt"
    [[ "$1" == --* && -f "$list" ]] || { echo "usage: tools/setup.sh [--docs|--vm|--bench|--vmtest]" >&2; exit 2; }
fi
# One package a line; a second word `no-service` means: we want the program, not the
# system service the package starts and enables (nginx, the lesson 13 yardstick, would
# otherwise serve port 80 on a student's VM from now on).
mapfile -t wanted < <(grep -v '^\s*#' "$list" | awk 'NF {print $1}')
mapfile -t quiet_services < <(grep -v '^\s*#' "$list" | awk '$2 == "no-service" {print $1}')

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "socklab: not a Debian/Ubuntu system; make sure you have: ${wanted[*]}" >&2
    exit 0
fi

missing=()
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${wanted[@]}" 2>/dev/null || true)
for pkg in "${wanted[@]}"; do
    grep -qE "^${pkg} ii" <<<"$installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "socklab needs these packages first:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

echo "socklab: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists at most once an hour (a fresh machine has none).
stamp=/var/lib/apt/periodic/socklab-update-stamp
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +60 2>/dev/null)" ]; then
    apt-get update -qq </dev/null
    mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
for svc in "${quiet_services[@]}"; do
    if [[ " ${missing[*]} " == *" $svc "* ]] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now "$svc" >/dev/null 2>&1 || true   # no systemd here: nothing runs
    fi
done
echo "socklab: packages installed" >&2
