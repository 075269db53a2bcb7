"""Disposable Linux sandboxes (bubblewrap over copy-on-write overlays) for tasks that run shell commands."""

from agentflan_eval.benchmarks.common.sandbox.bwrap import (
    ExecResult,
    Sandbox,
    SandboxError,
    SandboxLimits,
    sandbox_unavailable,
)
from agentflan_eval.benchmarks.common.sandbox.shell import ShellOutput

__all__ = ["ExecResult", "Sandbox", "SandboxError", "SandboxLimits", "ShellOutput", "sandbox_unavailable"]
