#!/usr/bin/env bash
# Rebuild dlib from source with OpenBLAS and LAPACK in EdgeGuard's venv, in place of the prebuilt wheel.
#
#   tools/build-dlib-blas.sh [VENV]
#
# VENV defaults to the active venv ($VIRTUAL_ENV), else this checkout's .venv, else /opt/edgeguard/venv
# (systemd/install.sh's; run as root). Installs libopenblas-dev liblapack-dev cmake build-essential
# python3-dev with apt when missing (sudo unless root), builds the installed dlib's version from PyPI's
# source under the same distribution name (so pip check stays clean and `pip install .` or install.sh
# keep the build), checks that it uses BLAS and LAPACK, and only then swaps it in: a failed build leaves
# the venv untouched. 14 CPU-minutes on x86-64 (18-26 minutes on 2 busy cores); DLIB_USE_CUDA=1 adds CUDA.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACKAGES=(libopenblas-dev liblapack-dev cmake build-essential python3-dev)

say() { echo "build-dlib-blas: $*"; }
die() { echo "build-dlib-blas: $*" >&2; exit 1; }

pick_venv() {
  if [ $# -gt 0 ]; then echo "$1"
  elif [ -n "${VIRTUAL_ENV:-}" ]; then echo "$VIRTUAL_ENV"
  elif [ -x "$REPO/.venv/bin/python" ]; then echo "$REPO/.venv"
  elif [ -x /opt/edgeguard/venv/bin/python ]; then echo /opt/edgeguard/venv
  else die "no venv found (no \$VIRTUAL_ENV, $REPO/.venv or /opt/edgeguard/venv): name one, e.g. $0 .venv"
  fi
}

# "NAME VERSION" of the one distribution that provides the dlib module in the venv.
dlib_distribution() {
  "$PY" - <<'EOF'
import sys
from importlib import metadata

found = metadata.packages_distributions()  # dlib's top_level.txt names only its extension module
names = sorted(set(found.get("dlib", []) + found.get("_dlib_pybind11", [])))
if len(names) != 1:
    sys.exit("dlib is not installed in this venv: install EdgeGuard first" if not names else
             f"{' and '.join(names)} both provide dlib here: pip uninstall them, then pip install EdgeGuard again")
print(names[0], metadata.version(names[0]))
EOF
}

install_packages() {
  if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    say "no apt here: make sure OpenBLAS, LAPACK, cmake, a C++ compiler and the Python headers are installed"
    return
  fi
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing ${missing[*]}"
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Build a wheel of dlib VERSION from PyPI's source into $WORK/wheel, named DIST (dlib-bin gets a +blas
# local version: there is no such dlib-bin release, and any real one is newer).
build_wheel() {
  local dist="$1" version="$2" src="$WORK/dlib-$2"
  "$PIP" download --quiet --no-deps --no-binary dlib --no-cache-dir --dest "$WORK" "dlib==$version"
  tar -xzf "$WORK/dlib-$version.tar.gz" -C "$WORK"
  if [ "$dist" = dlib-bin ]; then
    grep -q "^    name='dlib',$" "$src/setup.py" || die "dlib $version's setup.py does not name itself as expected"
    sed -i -e "s/^    name='dlib',$/    name='dlib-bin',/" \
        -e "s/^    version=read_version_from_cmakelists('dlib\/CMakeLists.txt'),$/    version='$version+blas',/" "$src/setup.py"
    grep -q "version='$version+blas'" "$src/setup.py" || die "dlib $version's setup.py does not set its version as expected"
  fi
  say "building $dist $version from source (14 CPU-minutes on x86-64; the log is in $WORK/build.log)"
  "$PIP" wheel --no-deps --no-cache-dir --wheel-dir "$WORK/wheel" --verbose "$src" >"$WORK/build.log" 2>&1 \
    || { tail -n 30 "$WORK/build.log" >&2; die "the build failed; the venv is unchanged"; }
  grep -E "BLAS|LAPACK" "$WORK/build.log" | grep -v Searching | sed -E 's/^[ -]*/    cmake: /' || true
}

# Import the built module from the unpacked wheel: does it use BLAS and LAPACK (and CUDA when asked for)?
check_wheel() {
  local unpacked="$WORK/unpacked"
  "$PY" -m zipfile -e "$WORK"/wheel/*.whl "$unpacked"
  (cd "$WORK" && PYTHONPATH="$unpacked" "$PY" - "$WORK/build.log") <<'EOF' || die "the venv is unchanged"
import os
import sys

import dlib

print(f"build-dlib-blas: built dlib {dlib.__version__}: BLAS {dlib.DLIB_USE_BLAS}, LAPACK {dlib.DLIB_USE_LAPACK}, "
      f"AVX {dlib.USE_AVX_INSTRUCTIONS}, NEON {dlib.USE_NEON_INSTRUCTIONS}, CUDA {dlib.DLIB_USE_CUDA}")
if not (dlib.DLIB_USE_BLAS and dlib.DLIB_USE_LAPACK):
    sys.exit(f"build-dlib-blas: dlib's build found no BLAS and LAPACK (see 'Searching for BLAS' in {sys.argv[1]})")
if os.environ.get("DLIB_USE_CUDA", "").upper() in ("1", "ON", "YES", "TRUE") and not dlib.DLIB_USE_CUDA:
    sys.exit(f"build-dlib-blas: DLIB_USE_CUDA is set but dlib's build did not find CUDA and cuDNN (see {sys.argv[1]})")
EOF
}

VENV="$(pick_venv "$@")"
PY="$VENV/bin/python"
PIP="$VENV/bin/pip"
[ -x "$PY" ] || die "$VENV is not a venv (no bin/python)"
found="$(dlib_distribution)"
read -r DIST INSTALLED <<<"$found"
if [ -z "${DLIB_USE_CUDA:-}" ] && "$PY" -c 'import dlib, sys; sys.exit(not (dlib.DLIB_USE_BLAS and dlib.DLIB_USE_LAPACK))'; then
  say "venv $VENV: dlib from $DIST $INSTALLED already uses BLAS and LAPACK; nothing to do"
  exit 0
fi
VERSION="$(echo "$INSTALLED" | grep -oE '^[0-9]+(\.[0-9]+)*')"  # dlib-bin 20.0.1.post1 is dlib 20.0.1
say "venv $VENV: dlib from $DIST $INSTALLED; building dlib $VERSION with BLAS"
WORK="$(mktemp -d)"  # kept when the build fails, for its log

install_packages
build_wheel "$DIST" "$VERSION"
check_wheel
"$PIP" uninstall --quiet --yes "$DIST"
"$PIP" install --quiet --no-deps --no-cache-dir "$WORK"/wheel/*.whl
rm -rf "$WORK"
"$PIP" check || true
say "done in $((SECONDS / 60)) min $((SECONDS % 60)) s: '$VENV/bin/edgeguard check' shows the dlib line"
