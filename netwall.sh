#!/usr/bin/env bash
# netwall's one entry point on a fresh Debian/Ubuntu machine (run as root).
#   ./netwall.sh run [options]   install on first use, then run the main job (netwall run)
#   ./netwall.sh test [pytest args]  install with test tools, lint, then run the test suite
#   ./netwall.sh bench [--only NAME,...]  run the benchmarks under bench/ and rewrite BENCHMARKS.md
#   ./netwall.sh install         install only (the Vagrant VM provisions with this)
#   ./netwall.sh <anything else> passed to the netwall command (check, profiles, clean, ...)
# Installing is idempotent: apt packages are added only when missing, and the venv in .venv
# is rebuilt only when setup.cfg changes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
apt_packages=(mininet bridge-utils iperf3 iproute2 python3-venv python3-pip
              iputils-ping iperf psmisc  # ping, iperf 2, killall: what Mininet's pingAll and iperf run
              openssh-server)  # sshd: the workers of a cluster spread over hosts (docs/multihost.md)
test_packages=(ruby chromium chromium-driver poppler-utils)  # ruby -c checks the Vagrantfile; headless Chromium loads the report and the live view; pdftoppm renders its PDF

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "netwall: needs root (network namespaces, veth, traffic control); try: sudo $0 $*" >&2
        exit 2
    fi
}

install_apt() {
    local missing=()
    for p in "${apt_packages[@]}" "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "netwall: installing ${missing[*]} (apt)" >&2
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
    fi
}

install_venv() {
    local extras="$1" stamp="$venv/.netwall-stamp" want
    want="$(sha256sum "$here/setup.cfg" | cut -d' ' -f1)$extras"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    echo "netwall: preparing $venv (pip)" >&2
    # System site packages: Mininet (and mnexec) come from Debian, not PyPI.
    /usr/bin/python3 -m venv --system-site-packages "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check -e "$here$extras" >&2
    echo "$want" > "$stamp"
}

cmd="${1:-run}"
[ $# -gt 0 ] && shift
need_root "$cmd"
if [ "$cmd" = test ]; then install_apt "${test_packages[@]}"; else install_apt; fi
case "$cmd" in
    install)
        install_venv "[dev]"
        ;;
    bench)
        install_venv "[dev]"
        cd "$here"
        exec "$venv/bin/python" -m bench.run "$@"
        ;;
    test)
        install_venv "[dev]"
        cd "$here"
        "$venv/bin/ruff" check .
        exec "$venv/bin/python" -m pytest "$@"
        ;;
    *)
        install_venv "[dev]"
        exec "$venv/bin/netwall" "$cmd" "$@"
        ;;
esac
