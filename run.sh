#!/usr/bin/env bash
# bookclub's two entry points on a fresh Debian/Ubuntu machine with Python >= 3.11:
#   ./run.sh demo   set up, then run the quarter on the embedded default (SQLite + demo data)
#   ./run.sh test   set up, then run the test suite (what CI runs)
# Set-up installs what is missing: Debian packages (Pango for WeasyPrint, CJK fonts,
# poppler-utils; libgs-common for the print files' CMYK output profile), a virtual environment in .venv and the Python packages.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk fonts-wqy-zenhei poppler-utils chromium libgs-common)
VENV=${BOOKCLUB_VENV:-.venv}

setup_debian() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

setup_python() {
  local python=${PYTHON:-}
  if [ -z "$python" ]; then
    for candidate in python3.13 python3.12 python3.11 python3; do
      if command -v "$candidate" >/dev/null &&
         "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        python=$candidate; break
      fi
    done
  fi
  [ -n "$python" ] || { echo "error: Python >= 3.11 is needed" >&2; exit 1; }
  [ -x "$VENV/bin/python" ] || "$python" -m venv "$VENV"
  local stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[dev]"
    touch "$stamp"
  fi
}

setup() {
  if command -v dpkg-query >/dev/null; then setup_debian; fi
  setup_python
}

case "${1:-}" in
  demo)
    shift
    setup
    exec "$VENV/bin/bookclub" quarter "$@"
    ;;
  test)
    shift
    setup
    "$VENV/bin/ruff" check recsys training catalog campaign demo quarterly api console bookclub_cli tests benchmarks
    "$VENV/bin/mypy" recsys training catalog campaign demo quarterly api console bookclub_cli
    set +e
    # two processes for the machine's two cores, a test file to each at a time (module fixtures
    # built once); `./run.sh test -n 0` runs in one process
    "$VENV/bin/python" -m pytest -n "${BOOKCLUB_TEST_PROCESSES:-2}" --dist loadfile "$@"
    status=$?
    set -e
    exit $status
    ;;
  setup)
    setup
    ;;
  *)
    echo "usage: ./run.sh demo [options] | test [pytest options] | setup" >&2
    exit 2
    ;;
esac
