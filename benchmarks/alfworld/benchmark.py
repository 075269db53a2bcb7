"""ALFWorld (held-in) under AgentTuning's frozen AgentBench (``AgentBench.old``).

Paper: Shridhar et al. 2021 (ALFWorld); protocol from ``AgentBench.old/src/tasks/alfworld``.
Data: the 50 standard games of ``agentbench_old/alfworld/std.json`` (ALFWorld ``valid_unseen``), played
with textworld's PDDL engine (PyPI ``alfworld``/``textworld``) on each ``game.tw-pddl``, with
AgentBench's ALFWorld domain and grammar (``agentbench/alfworld/logic``). Prompt: AgentBench's
instruction, then the one-shot ReAct example of the game's task type ("Here is one example."), then
"Here is your task. ...". Each reply's ``ACTION:`` text (else its first line) is mapped to the
admissible command with the highest BLEU when not admissible itself (AgentBench's ``process_action``);
an inadmissible command gets textworld's "Nothing happens.". At most 35 steps, replies of at most 128
tokens; the same reply three times in a row ends the episode as a failure. The model sees AgentBench's
history window (``agentflan_eval.benchmarks.common.agentbench``). Metric: success rate, also per task type.
The first prompt is byte-identical to the one AgentBench.old built (tests/fixtures/alfworld_first_prompts.json).
Gold solution (``selftest``): the game file's ``walkthrough``, replied as ``ACTION: ...``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import warnings
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from agentflan_eval.benchmark import Benchmark, Environment, GoldAgent, Observation, Sample
from agentflan_eval.benchmarks.common.agentbench import AgentBenchProtocol
from agentflan_eval.data import DataFile, read_json
from agentflan_eval.errors import DataFormatError
from agentflan_eval.records import Action, Deviation, EpisodeStatus, Message, Score, Step

GAMES = DataFile(
    "agenttuning/agentbench_old/alfworld/std.json", "THUDM/AgentTuning AgentBench.old/data/alfworld/std.json"
)
PROMPTS = DataFile(
    "agentbench/alfworld/prompts/alfworld_multiturn_react.json",
    "THUDM/AgentBench src/server/tasks/alfworld/prompts/alfworld_multiturn_react.json",
)
DOMAIN = DataFile("agentbench/alfworld/logic/alfred.pddl", "THUDM/AgentBench data/alfworld/logic/alfred.pddl")
GRAMMAR = DataFile(
    "agentbench/alfworld/logic/alfred.twl2", "THUDM/AgentBench data/alfworld/logic/alfred.twl2"
)
GAME_SOURCE = "ALFWorld json_2.1.1 release (alfworld-download), valid_unseen"
# Game-directory prefix -> key of the few-shot example (AgentBench's ``prefixes``).
PROMPT_KEY = {
    "pick_and_place": "put",
    "pick_clean_then_place": "clean",
    "pick_heat_then_place": "heat",
    "pick_cool_then_place": "cool",
    "look_at_obj": "examine",
    "pick_two_obj": "puttwo",
}
INSTRUCTION = (
    "Interact with a household to solve a task. Imagine you are an intelligent agent in a household environment "
    "and your target is to perform actions to complete the task goal. At the beginning of your interactions, you "
    "will be given the detailed description of the current environment and your goal to accomplish. For each of "
    "your turn, you will be given a list of actions which you can choose one to perform in this turn. You should "
    'choose from two actions: "THOUGHT" or "ACTION". If you choose "THOUGHT", you should first think about '
    "the current condition and plan for your future actions, and then output your action in this turn. Your "
    'output must strictly follow this format:"THOUGHT: your thoughts.\n ACTION: your next action\n"; If you '
    'choose "ACTION", you should directly output the action in this turn. Your output must strictly follow this '
    'format:"ACTION: your next action\n". After your each turn, the environment will give you immediate '
    'feedback based on which you plan your next few steps. if the envrionment output "Nothing happened", that '
    "means the previous action is invalid and you should try more options.\n Reminder: \n1. the action must be "
    "chosen from the given available actions. Any actions except provided available actions will be regarded as "
    "illegal. \n2. Think when necessary, try to act directly more in the process.\n\n"
)
ACKNOWLEDGE = "OK. I'll follow your instructions and try my best to solve the task."
_ACTION = re.compile(r"ACTION:(.*)")
_TASK = re.compile(r'"rhs": "Your task is to: (.*?)\."')
BLEU_FLOOR = 0.01  # AgentBench's ``limit``: below it the text is sent to the game as it is
# Where AgentBench.old's frozen text examples (THUDM/AgentTuning e33a45d, AgentBench.old/src/tasks/alfworld/
# prompts/alfworld_multiturn_react.json) differ from the data dir's later rewrite: (key, turn) -> (rewrite's
# text, frozen text). The heat example's 6th turn says "mivrowave"; the prompt keeps the original's bytes.
FROZEN_TEXT = {("heat", 5): ("there is a microwave 1 in the room", "there is a mivrowave 1 in the room")}
_MOVE = re.compile(r"^move (.+) to (.+)$")


class AlfworldSample(Sample):
    game: str  # path of game.tw-pddl inside the data dir
    prompt_key: str


def example_dialogue(turns: list[dict[str, Any]]) -> list[str]:
    """AgentBench's text few-shot turns from the function-calling copy in the data dir.

    The data dir holds AgentBench's current (function-calling) rewrite of the ReAct examples; the
    frozen copy had the same turns as text (but for FROZEN_TEXT): observations ending in a newline, replies as
    ``THOUGHT: ...\\n ACTION: ...\\n`` (or ``ACTION: ...\\n`` without a thought).
    """
    out = []
    for t in turns:
        if t["role"] == "agent":
            act = json.loads(t["tool_calls"][0]["function"]["arguments"])["action"]
            thought = t["content"]
            out.append(f"THOUGHT: {thought}\n ACTION: {act}\n" if thought else f"ACTION: {act}\n")
        else:
            out.append(t["content"] + "\n")
    return out


def closest_command(text: str, choices: Sequence[str]) -> str:
    """AgentBench's ``process_action``: the text if admissible, else the best-BLEU choice above the floor."""
    if not choices or text in choices:
        return text
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    smooth = SmoothingFunction().method4
    with warnings.catch_warnings():  # nltk warns on zero n-gram overlaps; a zero score is the answer
        warnings.simplefilter("ignore")
        bleus = [sentence_bleu([c.split()], text.split(), smoothing_function=smooth) for c in choices]
    best = max(range(len(choices)), key=lambda i: bleus[i])
    return choices[best] if bleus[best] > BLEU_FLOOR else text


class AlfworldEnv(Environment):
    def __init__(self, sample: AlfworldSample, game: dict[str, Any], examples: list[str]):
        self.sample, self.game, self.examples = sample, game, examples
        self.env: Any = None
        self.choices: list[str] = []
        self.replies: list[str] = []
        self.commands: list[str] = []
        self.won = False
        self.ended = ""

    def reset(self) -> list[Message]:
        import textworld
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
        from textworld.envs.pddl import PddlEnv

        self.env = AlfredDemangler(shuffle=False)(
            PddlEnv(textworld.EnvInfos(won=True, admissible_commands=True))
        )
        self.env.load(self.game)
        state = self.env.reset()
        self.choices = list(state["admissible_commands"])
        intro = "\n".join(state.feedback.split("\n\n")[1:])  # drop the "-= Welcome ... =-" banner
        shots = list(self.examples)
        shots[0] = "Here is one example.\n" + shots[0]
        msgs = [Message(role="user", content=INSTRUCTION), Message(role="assistant", content=ACKNOWLEDGE)]
        msgs += [Message(role="user" if i % 2 == 0 else "assistant", content=t) for i, t in enumerate(shots)]
        return [*msgs, Message(role="user", content="Here is your task. " + intro)]

    def step(self, action: Action) -> Observation:
        command = closest_command(action.argument, self.choices)
        state, _, done = self.env.step(command)
        self.commands.append(command)
        self.replies.append(action.raw)
        self.choices = list(state["admissible_commands"])
        self.won = bool(state["won"])
        text = state.feedback
        if text.startswith("You arrive at loc "):  # AgentBench's process_ob
            text = text[text.find(". ") + 2 :]
        if len(self.replies) > 3 and len(set(self.replies[-3:])) == 1:
            self.won, self.ended = False, "same reply three times"
            return Observation(text=text, done=True, status=EpisodeStatus.INVALID_ACTION)
        if done:
            self.ended = "won" if self.won else "game over"
            return Observation(text=text, done=True)
        return Observation(text=text)

    def info(self) -> dict[str, Any]:
        return {"won": self.won, "ended": self.ended, "commands": self.commands}

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


class ALFWorld(AgentBenchProtocol, Benchmark):
    name = "alfworld"
    suite = "held-in"
    metric = "success rate"
    scale = 1.0
    max_turns = 35
    n_standard = 50
    # AgentBench v0.1 dropped a game whose episode raised (its result carried an error message)
    errored_left_out = "any"
    data_files = (GAMES, PROMPTS, DOMAIN, GRAMMAR)
    paper = "Shridhar et al. 2021 (ALFWorld); protocol: AgentTuning (Zeng et al. 2023) AgentBench.old"

    def unavailable(self) -> str | None:
        if not all(importlib.util.find_spec(m) for m in ("alfworld", "textworld", "nltk")):
            return "needs the alfworld, textworld and nltk packages (pip install 'agentflan-eval[heldin]')"
        return super().unavailable()

    def all_data_files(self) -> tuple[DataFile, ...]:
        """The task's files and the game files ``std.json`` lists."""
        return (*self.data_files, *(self._game_file(g) for g in self._games()))

    def load_samples(self) -> list[Sample]:
        return list(self._games())

    def _games(self) -> list[AlfworldSample]:
        path = self.data.path(GAMES)
        out: list[AlfworldSample] = []
        for task_type, games in read_json(path).items():
            for game in games:
                parts = game.split("/")
                key = next((v for k, v in PROMPT_KEY.items() if parts[-3].startswith(k)), None)
                if len(parts) < 3 or key is None:
                    raise DataFormatError(path, None, f"unexpected game path {game!r}")
                out.append(
                    AlfworldSample(id="/".join(parts[-3:-1]), subset=task_type, game=game, prompt_key=key)
                )
        return out

    @staticmethod
    def _game_file(sample: AlfworldSample) -> DataFile:
        return DataFile(f"alfworld/{sample.game}", GAME_SOURCE)

    @cached_property
    def examples(self) -> dict[str, list[str]]:
        """The few-shot turns as AgentBench.old's frozen text copy had them (FROZEN_TEXT restores its bytes)."""
        path = self.data.path(PROMPTS)
        out = {k: example_dialogue(v) for k, v in read_json(path).items()}
        for (key, turn), (rewrite, frozen) in FROZEN_TEXT.items():
            if rewrite not in out[key][turn]:
                raise DataFormatError(path, None, f"{key} example turn {turn} lacks {rewrite!r}")
            out[key][turn] = out[key][turn].replace(rewrite, frozen)
        return out

    @cached_property
    def logic(self) -> dict[str, str]:
        return {
            "pddl_domain": self.data.path(DOMAIN).read_text(encoding="utf-8"),
            "grammar": self.data.path(GRAMMAR).read_text(encoding="utf-8"),
        }

    def make_env(self, sample: Sample) -> Environment:
        """The game with AgentBench's domain and grammar, its own task text put into the grammar's
        "UNKNOWN GOAL" slot as ALFWorld's ``add_task_to_grammar`` does when it builds a game."""
        assert isinstance(sample, AlfworldSample)
        path = self.data.path(self._game_file(sample))
        game = read_json(path)
        m = _TASK.search(game.get("grammar", ""))
        if m is None:
            raise DataFormatError(path, None, "no 'Your task is to: ...' rule in the game's grammar")
        game.update(
            pddl_domain=self.logic["pddl_domain"], grammar=self.logic["grammar"].replace("UNKNOWN GOAL", m[1])
        )
        return AlfworldEnv(sample, game, self.examples[sample.prompt_key])

    def gold_agent(self, sample: Sample) -> GoldAgent | None:
        """The game's ``walkthrough`` (the expert plan stored in game.tw-pddl), one ``ACTION: ...`` reply per
        step; the newer release's "move X to Y" is said as AgentBench's grammar says it, "put X in/on Y"."""
        assert isinstance(sample, AlfworldSample)
        walkthrough = read_json(self.data.path(self._game_file(sample))).get("walkthrough") or []
        plan = [_MOVE.sub(r"put \1 in/on \2", step) for step in walkthrough]
        opening = 3 + len(self.examples[sample.prompt_key])  # instruction, answer, examples, task

        def reply(messages: Sequence[Message]) -> str:
            step = (len(messages) - opening) // 2
            if step >= len(plan):
                raise RuntimeError(f"the expert plan's {len(plan)} steps did not finish the game")
            return f"ACTION: {plan[step]}\n"

        return reply

    def parse_action(self, reply: str) -> Action:
        """The text after the first ``ACTION:``; a reply without one is invalid but still played,
        as AgentBench sends its first line to the game."""
        m = _ACTION.search(reply)
        text = (m.group(1) if m else reply).strip().lower().split("\n")[0]
        return Action(name="act", argument=text, valid=m is not None, raw=reply)

    def score(self, sample: Sample, steps: Sequence[Step], env_info: dict[str, Any]) -> Score:
        won = bool(env_info.get("won"))
        return Score(value=float(won), success=won, details={"ended": env_info.get("ended", "")})

    def deviations(self) -> list[Deviation]:
        return [
            Deviation(
                task=self.name,
                what="game files from the newer ALFWorld release, played with AgentBench's "
                "domain and grammar (alfred.pddl/alfred.twl2) substituted for the embedded ones",
                why="the shared copies embed ALFWorld 0.4's grammar ('move X to Y', 'You arrive at "
                "desk 1'); AgentBench's games used 'put X in/on Y' and 'You arrive at loc N'",
            ),
        ]
