#!/usr/bin/env bash
# Set up everything ringloop needs to build and test, idempotently.
#
#   scripts/setup.sh [PYTHON]      PYTHON: a path, a command, or a version like 3.13
#                                  (default: $PYTHON, else python3)
#
# 1. On Debian/Ubuntu, installs the missing system packages (liburing-dev, libssl-dev, gcc,
#    python3-dev, python3-venv) with apt-get; `apt-get update` only runs when
#    something is missing.
# 2. Creates a virtual environment for the chosen interpreter: .venv for the
#    default one, .venv-X.Y when an interpreter was named (.venv-3.12, ...), and
#    .venv-debian-X.Y inside scripts/debian-python.sh's chroot (PYTHON=3.13 to 3.15).
# 3. Installs ringloop into it, editable, with its extras [test,bench,compat]; this is
#    skipped when nothing the build depends on changed since the last install.
#
# RINGLOOP_SANITIZE=address builds the compiled core with AddressSanitizer (which
# includes LeakSanitizer) into its own venv, .venv-asan (.venv-asan-X.Y), installed
# from a copy of the tree rather than editable (an editable build puts its .so beside
# the sources, where .venv would load it); scripts/sanitize-test.sh runs the suite on it.
#
# Progress goes to stderr; the last line on stdout is the venv's path, so other
# scripts do:  venv=$(scripts/setup.sh "$PYTHON")
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
spec=${1:-${PYTHON:-}}
# 3.13 to 3.15 at their latest patch releases live in a Debian sid chroot: set up there
# (the venv it prints runs under `scripts/debian-python.sh run`).
if [ -z "${RINGLOOP_IN_DEBIAN_CHROOT:-}" ] && "$root/scripts/debian-python.sh" serves "$spec"; then
    "$root/scripts/debian-python.sh" ensure "$spec" >/dev/null
    exec "$root/scripts/debian-python.sh" run "$root/scripts/setup.sh" "python$spec"
fi

say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# --- system packages ----------------------------------------------------------
apt_updated=
ensure_packages() {
    command -v dpkg-query >/dev/null || { say "not a Debian-like system: skipping apt (need liburing, gcc, Python headers)"; return; }
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    [ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
    say "installing ${missing[*]}"
    if [ -z "$apt_updated" ]; then
        apt-get update -qq >&2 || die "apt-get update failed"
        apt_updated=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/ringloop-apt.log 2>&1 ||
        { cat /tmp/ringloop-apt.log >&2; die "apt-get install failed"; }
}

# libssl-dev: the C OpenSSL floor and load generator of bench/tls.
ensure_packages liburing-dev libssl-dev gcc python3 python3-dev python3-venv

# --- the interpreter ----------------------------------------------------------
works() { [ -n "$1" ] && "$1" -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1; }

resolve_python() {
    local s=$1 c
    if [[ $s =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]]; then
        # A version: pyenv's build first, then pythonX.Y on PATH, then pyenv's folder
        # directly (for shells where pyenv is not on PATH).
        local prefix
        prefix=$(pyenv prefix "$s" 2>/dev/null | head -n1) || prefix=
        for c in ${prefix:+"$prefix/bin/python"} "$(command -v "python$s" 2>/dev/null)" \
                 "${PYENV_ROOT:-${HOME:-/root}/.pyenv}"/versions/"$s"*/bin/python; do
            works "$c" && { echo "$c"; return; }
        done
        return 1
    fi
    c=$(command -v "$s" 2>/dev/null) || return 1
    works "$c" && echo "$c"
}

py=$(resolve_python "${spec:-python3}") || die "no usable Python (>= 3.11) for '${spec:-python3}'"
# The interpreter's real file (not a pyenv shim), its X.Y, and its full identity.
py_real=$("$py" -c 'import os, sys; print(os.path.realpath(sys.executable))')
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ident=$("$py" -c 'import sys; print(sys.version)')

# Debian's own pythonX.Y needs its -dev and -venv packages (python3-* cover only the
# default one), and its test package (CPython's test.test_asyncio, run by the suite).
case $py_real in
    /usr/bin/python*) ensure_packages "python$ver-dev" "python$ver-venv" "libpython$ver-testsuite" ;;
esac

# --- the virtual environment --------------------------------------------------
sanitize=${RINGLOOP_SANITIZE:-}
case $sanitize in
    "") suffix= ;;
    address) suffix=-asan ;;
    *) die "RINGLOOP_SANITIZE=$sanitize: only 'address' is supported" ;;
esac
# Inside scripts/debian-python.sh's chroot the venv has its own name: the host may have a
# venv of the same X.Y made by another build of it.
if [ -n "${RINGLOOP_IN_DEBIAN_CHROOT:-}" ]; then venv=$root/.venv$suffix-debian-$ver
elif [ -n "$spec" ]; then venv=$root/.venv$suffix-$ver; else venv=$root/.venv$suffix; fi
vpy=$venv/bin/python
# An ASan-built extension loads only into a process that has the ASan runtime first.
asan_runtime() { gcc -print-file-name=libasan.so; }
vpy_run() {
    if [ -n "$sanitize" ]; then
        LD_PRELOAD=$(asan_runtime) ASAN_OPTIONS=detect_leaks=0 "$vpy" "$@"
    else
        "$vpy" "$@"
    fi
}

# Re-create a venv that is broken or was made by another interpreter.
if [ -e "$venv" ] && [ "$("$vpy" -c 'import sys; print(sys.version)' 2>/dev/null)" != "$ident" ]; then
    say "re-creating $venv (interpreter changed or venv broken)"
    rm -rf "$venv"
fi
if [ ! -e "$vpy" ]; then
    say "creating $venv with $py_real (Python $ver)"
    "$py" -m venv "$venv" >&2
    "$vpy" -m pip install -q --upgrade pip >"$venv/pip-upgrade.log" 2>&1 ||
        { cat "$venv/pip-upgrade.log" >&2; die "upgrading pip failed"; }
fi

# --- the package --------------------------------------------------------------
# What the compiled core is built from (editable installs see .py changes by themselves);
# a .c file that Cython generates from a .pyx beside it is left out.
stamp_of() {
    (cd "$root" && {
        echo "$ident"
        find setup.py pyproject.toml src -type f \
            \( -name '*.pyx' -o -name '*.pxi' -o -name '*.pxd' -o -name '*.h' -o -name '*.c' \
               -o -name setup.py -o -name pyproject.toml ${sanitize:+-o -name '*.py'} \) | sort |
        while read -r f; do
            [[ $f == *.c && -e ${f%.c}.pyx ]] || sha256sum "$f"
        done
    } | sha256sum | cut -d' ' -f1)
}
install_editable() {
    (cd "$root" && "$vpy" -m pip install --no-build-isolation -e ".[test,bench,compat]")
}
install_sanitized() {
    local copy wheel rc=0
    copy=$(mktemp -d)
    cp -r "$root/setup.py" "$root/pyproject.toml" "$root/README.md" "$root/src" "$copy/"
    (cd "$copy" && CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g" LDFLAGS="-fsanitize=address" \
        "$vpy" -m pip wheel --no-build-isolation --no-deps -w dist .) &&
    wheel=$(echo "$copy"/dist/ringloop-*.whl) &&
    "$vpy" -m pip install --force-reinstall --no-deps "$wheel" &&
    "$vpy" -m pip install "$wheel[test]" || rc=$?
    rm -rf "$copy"
    return $rc
}
stamp_file=$venv/.ringloop-build-stamp
stamp=$(stamp_of)

if [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ] && (cd /tmp && vpy_run -c 'import ringloop._core') 2>/dev/null; then
    say "ringloop is up to date in $venv"
else
    say "building and installing ringloop ($([ -n "$sanitize" ] && echo "with -fsanitize=$sanitize, extra test" || echo "editable, extras test,bench,compat")) into $venv"
    log=$venv/pip-install.log
    # Build dependencies live in the venv (no build isolation): rebuilds are faster
    # and need no fresh download of setuptools/Cython each time.
    if [ -n "$sanitize" ]; then install_ringloop=install_sanitized; else install_ringloop=install_editable; fi
    if ! { "$vpy" -m pip install -q "setuptools>=68" "Cython>=3.1" wheel && $install_ringloop; } >"$log" 2>&1; then
        cat "$log" >&2
        die "installing ringloop failed (log above, also in $log)"
    fi
    echo "$stamp" >"$stamp_file"
    say "installed: $(cd /tmp && vpy_run -c 'import ringloop; print("ringloop", ringloop.__version__, "from", ringloop.__file__)')"
fi

echo "$venv"
