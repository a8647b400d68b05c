#!/usr/bin/env bash
# Newer CPython releases than this machine's own, from Debian's unstable suite (sid), in a
# cached chroot: Debian builds them against a newer glibc than Debian 12's, so they cannot
# be installed beside the host's packages, but they run in a chroot on the host's kernel
# (io_uring included).
#
#   scripts/debian-python.sh ensure 3.14 [3.15 ...]   # build or update the chroot; prints its root
#   scripts/debian-python.sh run CMD [ARGS...]         # run CMD inside it, in the current directory
#   scripts/debian-python.sh versions                  # pythonX.Y versions the chroot's archive offers
#   scripts/debian-python.sh serves 3.X                # exit 0 if 3.X is taken from the chroot
#
# The chroot lives in $RINGLOOP_CACHE (default ~/.cache/ringloop)/debian-sid: the first
# `ensure` takes a few minutes (debootstrap), later ones about a second (only packages
# not installed yet are fetched). For each version it installs pythonX.Y with its -dev
# and -venv packages and libpython3.X-testsuite (CPython's test.test_asyncio), plus what
# ringloop's build needs (gcc, liburing-dev, libssl-dev).
#
# `run` enters a private mount namespace (unshare), so every mount it makes (/proc, /sys,
# /dev with its pts and shm, this repository at the same path as outside) disappears when
# CMD exits; nothing is left mounted on the host. Needs root.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${RINGLOOP_CACHE:-${HOME:-/root}/.cache/ringloop}
chroot_dir=$cache/debian-sid
mirror=${RINGLOOP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What ringloop's build and test suite need besides the interpreters.
base_packages=(ca-certificates gcc libc6-dev liburing-dev libssl-dev make procps openssl
               python3 python3-dev python3-venv)
# The versions taken from here: those whose latest patch release this machine does not have
# (pyenv's 3.11.7 and 3.12.1 are newer than anything Debian serves for 3.11 and 3.12: sid
# dropped them, and Debian 12 has 3.11.2). `serves 3.X` answers for scripts/test.sh.
served_versions=(3.13 3.14 3.15)

say() { printf '[debian-python] %s\n' "$*" >&2; }
die() { printf '[debian-python] ERROR: %s\n' "$*" >&2; exit 1; }

[ "${1:-}" = serves ] || [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mounts)"

in_chroot() { chroot "$chroot_dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
                  DEBIAN_FRONTEND=noninteractive "$@"; }

# The archive served here is a frozen snapshot: its Release files' Valid-Until is in the
# past, which apt refuses unless told not to check it.
configure_apt() {
    printf 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n' \
        >"$chroot_dir/etc/apt/apt.conf.d/90ringloop"
    printf 'deb %s sid main\n' "$mirror" >"$chroot_dir/etc/apt/sources.list"
}

# pip inside trusts what the host trusts: the host's local CA certificates (a TLS-inspecting
# proxy's, for instance) are added to the chroot's store.
sync_host_config() {
    cp -L /etc/resolv.conf "$chroot_dir/etc/resolv.conf" 2>/dev/null || true
    if compgen -G '/usr/local/share/ca-certificates/*' >/dev/null; then
        mkdir -p "$chroot_dir/usr/local/share/ca-certificates"
        if ! diff -rq /usr/local/share/ca-certificates "$chroot_dir/usr/local/share/ca-certificates" >/dev/null 2>&1; then
            cp -a /usr/local/share/ca-certificates/. "$chroot_dir/usr/local/share/ca-certificates/"
            [ -x "$chroot_dir/usr/sbin/update-ca-certificates" ] &&
                in_chroot update-ca-certificates >/dev/null 2>&1 || true
        fi
    fi
}

bootstrap() {
    command -v debootstrap >/dev/null || {
        say "installing debootstrap"
        apt-get install -y -qq --no-install-recommends debootstrap >&2 || die "apt-get install debootstrap failed"
    }
    local tmp=$chroot_dir.partial
    rm -rf "$tmp"
    mkdir -p "$cache"
    say "debootstrap --variant=minbase sid into $chroot_dir (a few minutes, once)"
    debootstrap --variant=minbase sid "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
        { tail -n 30 "$cache/debootstrap.log" >&2; die "debootstrap failed (log: $cache/debootstrap.log)"; }
    mv "$tmp" "$chroot_dir"
}

ensure() {
    local v packages=("${base_packages[@]}")
    for v in "$@"; do
        [[ $v =~ ^3\.[0-9]+$ ]] || die "not a Python version: $v"
        packages+=("python$v" "python$v-dev" "python$v-venv" "libpython$v-testsuite")
    done
    mkdir -p "$cache"
    exec 9>"$cache/debian-sid.lock"
    flock 9
    [ -x "$chroot_dir/usr/bin/apt-get" ] || bootstrap
    configure_apt
    sync_host_config
    local missing=() p
    for p in "${packages[@]}"; do
        in_chroot dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing in the chroot: ${missing[*]}"
        { in_chroot apt-get update -qq && in_chroot apt-get install -y -qq "${missing[@]}"; } \
            >"$cache/apt.log" 2>&1 || { tail -n 30 "$cache/apt.log" >&2; die "apt-get in the chroot failed (log: $cache/apt.log)"; }
        sync_host_config
    fi
    flock -u 9
    echo "$chroot_dir"
}

# Mounts for the command, inside the private namespace `run` enters. This repository is
# bound at the same path as outside, so venvs and paths in logs mean the same on both sides.
mount_and_exec() {
    local r=$chroot_dir cwd=$1; shift
    mount -t proc proc "$r/proc"
    mount --rbind /sys "$r/sys"
    mount --rbind /dev "$r/dev"              # with /dev/pts (ptys) and /dev/shm (multiprocessing)
    # /tmp first: the repository may itself live under /tmp.
    mkdir -p "$r/tmp"
    mount -t tmpfs tmpfs "$r/tmp"
    mkdir -p "$r$root"
    mount --bind "$root" "$r$root"
    # The host's pip settings name host paths (PIP_FIND_LINKS: a local wheel folder that is
    # not in the chroot); the CA bundle path is the same on both sides.
    exec chroot "$r" /usr/bin/env -u PIP_FIND_LINKS PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root RINGLOOP_IN_DEBIAN_CHROOT=1 sh -c 'cd "$0" && exec "$@"' "$cwd" "$@"
}

case ${1:-} in
    ensure) shift; [ $# -gt 0 ] || die "usage: $0 ensure 3.X [3.Y ...]"; ensure "$@" ;;
    run)
        shift; [ $# -gt 0 ] || die "usage: $0 run CMD [ARGS...]"
        [ -x "$chroot_dir/usr/bin/env" ] || die "no chroot yet: run '$0 ensure 3.X' first"
        sync_host_config
        exec unshare --mount --propagation private "$0" __mounted "$PWD" "$@" ;;
    __mounted) shift; mount_and_exec "$@" ;;
    versions)
        [ -x "$chroot_dir/usr/bin/apt-cache" ] || die "no chroot yet: run '$0 ensure 3.X' first"
        in_chroot apt-cache policy 'python3.[0-9]*' 2>/dev/null | awk '/^python3\.[0-9]+:$/ {p=$1} /Candidate:/ && p {print p, $2; p=""}' ;;
    serves) [ $# -eq 2 ] && [[ " ${served_versions[*]} " == *" $2 "* ]] ;;
    *) die "usage: $0 ensure 3.X [...] | run CMD [ARGS...] | versions" ;;
esac
