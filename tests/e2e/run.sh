#!/usr/bin/env bash
# End-to-end tests: the official Python clients (qdrant-client, langchain-qdrant) against a real
# `vecstash serve`. Usage: tests/e2e/run.sh PATH/TO/vecstash [pytest args...]
# Exits 77 (ctest: skipped) when the Python environment is missing (1 when CI=true); create it with
# scripts/setup.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ $# -lt 1 ]; then
  echo "usage: $0 PATH/TO/vecstash [pytest args...]" >&2
  exit 2
fi
bin=$1
shift
if [ ! -x "$bin" ]; then
  echo "e2e: vecstash binary not found or not executable: $bin" >&2
  exit 1
fi
VECSTASH_BIN=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
export VECSTASH_BIN

py=.venv/bin/python
# In CI the environment is part of the job (make test runs scripts/setup.sh): missing is a failure.
skip=77
[ "${CI:-}" = "true" ] && skip=1
if [ ! -x "$py" ]; then
  echo "e2e: skipped: $PWD/$py is missing (run scripts/setup.sh to create .venv from scripts/requirements.txt)"
  exit $skip
fi
if ! "$py" -c "import qdrant_client, langchain_qdrant, pytest, numpy" 2>/dev/null; then
  echo "e2e: skipped: $PWD/$py cannot import qdrant_client, langchain_qdrant, pytest and numpy (run scripts/setup.sh)"
  exit $skip
fi

# No stray proxies for loopback traffic; no bytecode files in the source tree.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export PYTHONDONTWRITEBYTECODE=1
exec "$py" -m pytest -q -p no:cacheprovider tests/e2e "$@"
