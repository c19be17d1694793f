#!/usr/bin/env bash
# streamsync's one entry point for people and CI.
#
#   ./run.sh demo    replicate the bundled real GlusterFS brick into a fresh replica and verify it
#   ./run.sh test    run the whole test suite
#
# Works on a fresh Debian machine with only Python 3 and apt: installs what is missing
# (python3-venv, rsync, attr, ...) with apt-get, makes .venv and pip-installs streamsync there.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(rsync tar attr openssh-client openssh-server)
VENV=${STREAMSYNC_VENV:-.venv}
EXTRAS="test,analysis,dask,notebooks"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else say "need root for: $*"; return 1
    fi
}

ensure_apt() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        say "not a Debian system; please install: ${missing[*]}"
        return 0
    fi
    say "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_venv() {
    local py=${PYTHON:-python3}
    if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        local ver; ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        ensure_apt "python${ver}-venv"
    fi
    local stamp="$VENV/.streamsync-installed"
    local want; want=$(cat pyproject.toml | sha256sum | cut -c1-16)
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating virtualenv $VENV"
        "$py" -m venv "$VENV"
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        say "installing streamsync[$EXTRAS] into $VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
        "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
        echo "$want" > "$stamp"
    fi
}

cmd=${1:-help}
shift || true
case "$cmd" in
    demo)
        ensure_apt "${APT_PACKAGES[@]}"
        ensure_venv
        exec "$VENV/bin/python" examples/demo.py "$@"
        ;;
    test)
        ensure_apt "${APT_PACKAGES[@]}"
        ensure_venv
        exec "$VENV/bin/python" -m pytest -q "$@"
        ;;
    *)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
