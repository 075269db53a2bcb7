"""Packaging: benchmarks/, model_zoo/ and finetune/ install inside agentflan_eval, never at top level;
importing the package stays light."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_has_no_generic_top_level_modules(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("agentflan_eval-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"agentflan_eval"}
    assert "agentflan_eval/benchmarks/hotpotqa/benchmark.py" in names
    assert "agentflan_eval/model_zoo/chat_templates.py" in names
    assert "agentflan_eval/finetune/__init__.py" in names
    subpackages = {  # every package, through the links to benchmarks/, model_zoo/ and finetune/
        f"agentflan_eval/{Path(d).relative_to(REPO / 'agentflan_eval')}/__init__.py"
        for d, _, files in os.walk(REPO / "agentflan_eval", followlinks=True)
        if "__init__.py" in files and "__pycache__" not in d and Path(d) != REPO / "agentflan_eval"
    }
    assert "agentflan_eval/benchmarks/common/browser/__init__.py" in subpackages
    assert subpackages <= set(names), sorted(subpackages - set(names))
    assert "agentflan_eval/report/assets/report.css" in names
    assert "agentflan_eval/benchmarks/webshop/prompts/webshop_agentbench.json" in names


def test_import_is_light() -> None:
    code = (
        "import sys, agentflan_eval, agentflan_eval.benchmarks, agentflan_eval.cli; "
        "agentflan_eval.cli.build_parser(); "
        "[agentflan_eval.benchmarks.get(n) for n in agentflan_eval.benchmarks.task_names()]; "
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'openai') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == ""
