"""Where a backend cannot apply a task's protocol.

Kept apart from the runner so that the rules about what a backend can do live in one place: a remote chat
API cannot cut a prompt's tokens (the server's tokenizer is not here) nor take a raw completion prompt.
"""

from __future__ import annotations

from agentflan_eval.backends.base import Backend, GenerationRequest
from agentflan_eval.benchmark import Benchmark
from agentflan_eval.records import Deviation, Message, Overflow, PromptFormat


def backend_deviations(bench: Benchmark, backend: Backend) -> list[Deviation]:
    """The ways ``backend`` departs from ``bench``'s overflow rule and prompt format."""
    out = []
    if bench.request_overflow() is Overflow.TRUNCATE_LEFT and not backend.cuts_prompts:
        out.append(
            Deviation(
                task=bench.name,
                what="a prompt over the context ends its episode as context_limit instead of being cut "
                "from the left to the context minus the reply budget",
                why=f"the {backend.name} backend sends text to a server whose tokenizer it does not have",
            )
        )
    if (
        bench.suite == "held-out"
        and bench.request_overflow() is Overflow.TRUNCATE_LEFT
        and backend.cuts_prompts
    ):
        out.append(
            Deviation(
                task=bench.name,
                what="a prompt still over the context is cut from the left to the context minus the reply "
                "budget",
                why="AgentTuning's held-out scripts had TGI keep the prompt's last 4,000 tokens whatever the "
                "budget (truncate 4000); the model's own context is used here",
            )
        )
    if bench.prompt_format is PromptFormat.CHAT_NO_SYSTEM and adds_own_system(backend):
        out.append(
            Deviation(
                task=bench.name,
                what="the prompt opens with the chat template's own default system prompt, where the "
                "original sent no system message",
                why=f"the {backend.template_name!r} template inserts one whenever a conversation has none "
                "(a tokenizer's Jinja template cannot be told not to); --chat-template picks another",
            )
        )
    if bench.prompt_format is PromptFormat.COMPLETION and not backend.raw_prompts:
        out.append(
            Deviation(
                task=bench.name,
                what="the raw completion prompt is sent as one user turn, through the server's chat template",
                why=f"the {backend.name} backend speaks the chat completions API only",
            )
        )
    return out


_PROBE = "PROBE-6c1d: is there a system block before me?"


def adds_own_system(backend: Backend) -> bool:
    """Whether the local template puts a system block before a conversation that has none (SmolLM2's
    Jinja template does). A remote backend's template is the server's: not known here."""
    if not backend.cuts_prompts:
        return False
    request = GenerationRequest(
        messages=[Message(role="user", content=_PROBE)], prompt_format=PromptFormat.CHAT_NO_SYSTEM
    )
    return "system" in backend.render(request).split(_PROBE)[0].lower()
