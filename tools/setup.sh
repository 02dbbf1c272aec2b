#!/usr/bin/env bash
# Install what socklab needs from Debian/Ubuntu packages (never PyPI).
# Quiet and fast when everything is present.  As root it installs what is missing;
# otherwise it prints the exact sudo command and exits 1.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# --NAME ...: the packages of tools/packages-NAME.txt instead, same rules: --docs for
# `./lab docs`; --vm, --bench, --report (headless Chromium) and the like for the
# project's own tests of those parts; --vmtest for tools/vm-test.
lists=("$here/packages.txt")
if [ $# -gt 0 ]; then
    lists=()
    for opt in "$@"; do
        list="$here/packages-${opt#--}.txt"
        [[ "$opt" == --* && -f "$list" ]] || {
            echo "usage: tools/setup.sh [--NAME ...]  (NAME: one of $(cd "$here" && ls packages-*.txt | sed 's/packages-\(.*\)\.txt/\1/' | tr '\n' ' '))" >&2
            exit 2
        }
        lists+=("$list")
    done
fi
mapfile -t wanted < <(cat "${lists[@]}" | grep -v '^\s*#' | awk 'NF {print $1}')
mapfile -t quiet_services < <(cat "${lists[@]}" | grep -v '^\s*#' | awk '$2 == "no-service" {print $1}')

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "socklab: not a Debian/Ubuntu system; make sure you have: ${wanted[*]}" >&2
    exit 0
fi

missing_packages() {
    local installed pkg
    missing=()
    installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${wanted[@]}" 2>/dev/null || true)
    for pkg in "${wanted[@]}"; do
        grep -qE "^${pkg} ii" <<<"$installed" || missing+=("$pkg")
    done
}
missing_packages
[ ${#missing[@]} -eq 0 ] && exit 0

# Root of the initial user namespace: under `unshare -r` id -u says 0, yet apt cannot work.
if [ "$(id -u)" -ne 0 ] || [ "$(awk 'NR == 1 {print $1, $2, $3}' /proc/self/uid_map)" != "0 0 4294967295" ]; then
    echo "socklab needs these packages first:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

# One install at a time: two first runs of ./lab, or the test suite and a lab command,
# would otherwise race for apt's locks and one would fail.  The lock lives in a folder
# only root can write, so nobody can plant a link where root opens it; >> never truncates.
state=/var/lib/socklab
install -d -m 0755 "$state"
exec 9>>"$state/setup.lock"
if ! flock -w 900 9; then
    echo "socklab: another package install has held $state/setup.lock for 15 minutes" >&2
    exit 1
fi
missing_packages                      # the install we waited for may have done our part
[ ${#missing[@]} -eq 0 ] && exit 0

echo "socklab: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# apt of another program (unattended-upgrades on a fresh VM): install waits for dpkg's
# lock by itself; update does not, so it retries, for at most five minutes.
wait_for_apt=(-o DPkg::Lock::Timeout=300)
# Refresh the package lists at most once an hour (a fresh machine has none).
stamp=/var/lib/apt/periodic/socklab-update-stamp
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +60 2>/dev/null)" ]; then
    for try in $(seq 60); do
        if err=$(apt-get "${wait_for_apt[@]}" update -qq </dev/null 2>&1); then
            break
        fi
        if ! grep -q "Could not get lock" <<<"$err" || [ "$try" -eq 60 ]; then
            echo "$err" >&2
            echo "socklab: apt-get update failed" >&2
            exit 1
        fi
        sleep 5                         # another apt holds the lists' lock; wait for it
    done
    mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
apt-get "${wait_for_apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
for svc in "${quiet_services[@]}"; do
    if [[ " ${missing[*]} " == *" $svc "* ]] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now "$svc" >/dev/null 2>&1 || true   # no systemd here: nothing runs
    fi
done
echo "socklab: packages installed" >&2
