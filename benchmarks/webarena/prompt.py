"""WebArena's prompt and reply parser as AgentTuning ran them (``eval_heldout/webarena``, THUDM/AgentTuning
e33a45d), for ``--provider llama --model agent-llama`` (``eval-tgi.sh``).

- Prompt (``agent/prompts/prompt_constructor.py`` l.84-97, 211-242): no history. Each turn is the intro as a
  user turn answered "Ok.", the two examples of ``p_cot_id_actree_2s`` as user/assistant pairs, then the
  current ``OBSERVATION / URL / OBJECTIVE / PREVIOUS ACTION`` turn; every text stripped.
- Observation cut (l.224-227; ``run.py`` l.120-125; ``agent/agent.py`` l.256-257): its first 1,920 tokens of
  ``tiktoken.encoding_for_model("gpt-4")`` (cl100k_base) for the llama provider, decoded back to text.
- Reply budget 384 tokens (``run.py`` l.118), no stop string (``--stop_token`` None; the TGI call sends none).
- After a reply with no action, PREVIOUS ACTION quotes it and restates the format (``format_error``).
- Action (l.244-255): the first ```` ```...``` ```` on one line (``re.search`` without DOTALL; the answer phrase
  is not looked for), the display URLs in it mapped back to the local sites, then WebArena's
  ``create_id_based_action``.
The intro and examples are the text of ``agentflan_eval.benchmarks.common.browser.prompt`` (WebArena's).
"""

from __future__ import annotations

import re

from agentflan_eval.benchmarks.common.browser import prompt as browser_prompt
from agentflan_eval.records import Message

MAX_OBS_TOKENS = 1920  # run.py --max_obs_length
MAX_NEW_TOKENS = 384  # run.py --max_tokens
_ACTION = re.compile(r"```(.*?)```")  # action_splitter "```", no DOTALL: the block is on one line
TEMPLATE = (
    "OBSERVATION:\n{observation}\nURL: {url}\nOBJECTIVE: {objective}\nPREVIOUS ACTION: {previous_action}"
)


def cut_observation(observation: str) -> str:
    """The observation's first ``MAX_OBS_TOKENS`` cl100k tokens, decoded (a cut inside a character leaves
    U+FFFD, as tiktoken's decode does)."""
    from agentflan_eval.benchmarks.common.cl100k import encoding

    enc = encoding()
    return enc.decode(enc.encode_ordinary(observation)[:MAX_OBS_TOKENS])


def current(observation: str, url: str, objective: str, previous_action: str) -> str:
    """The turn's input: the template filled with the cut observation."""
    return TEMPLATE.format(
        observation=cut_observation(observation),
        url=url,
        objective=objective,
        previous_action=previous_action,
    )


def format_error(reply: str) -> str:
    """PREVIOUS ACTION after a reply with no action (``browser_env/helper_functions.py`` l.96-103)."""
    return (
        f'The previous prediction you issued was "{reply}". However, the format was incorrect. Ensure that the '
        "action is wrapped inside a pair of ``` and enclose arguments within [] as follows: ```action [arg] ...```."
    )


def messages(current_turn: str) -> list[Message]:
    """The whole prompt for one turn: intro (user), 'Ok.', the two examples, the current turn."""
    intro, *rest = browser_prompt.opening(current_turn, homepage=True)
    return [
        Message(role="user", content=intro.content.strip()),
        Message(role="assistant", content="Ok."),
        *(Message(role=m.role, content=m.content.strip()) for m in rest),
    ]


def extract_action(reply: str) -> str | None:
    """What the first one-line fenced block holds, or None when there is none (a parsing failure)."""
    m = _ACTION.search(reply)
    return m.group(1) if m else None
