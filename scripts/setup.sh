#!/usr/bin/env bash
# Install what vecstash needs on Debian 12: idempotent and non-interactive. Runs in about a second
# when everything is present, so `make demo` and `make test` call it every time.
#   - system packages through apt (as root, or through sudo);
#   - a Python virtual environment in .venv for the Python tooling, when scripts/requirements.txt exists.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libfaiss-dev librocksdb-dev libboost-dev libboost-program-options-dev nlohmann-json3-dev
  libopenblas-dev liblapacke-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev zlib1g-dev libsimdjson-dev
  wrk curl
  python3 python3-venv
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
      echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: system packages present"
fi

if [ -f scripts/requirements.txt ]; then
  if [ ! -x .venv/bin/python ]; then
    echo "setup: creating the Python virtual environment in .venv"
    python3 -m venv .venv
  fi
  stamp=.venv/.requirements.sha256
  want=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r scripts/requirements.txt
    echo "$want" >"$stamp"
  fi
fi
