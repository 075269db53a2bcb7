"""The Agent-FLAN data pipeline on real trajectories from shared/data: parse, align, decompose, ratios,
negatives, loss spans, and the whole build."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agentflan_eval.data import DataResolver, read_jsonl
from agentflan_eval.finetune import align, chat, decompose, negatives, parse, render, sources
from agentflan_eval.finetune.build_data import BuildConfig, build
from agentflan_eval.finetune.records import Conversation, ToolSpec, Turn
from agentflan_eval.model_zoo.chat_templates import get_template
from agentflan_eval.records import Message

FIREACT = "fireact/data/finetune/gpt_format/hotpotqa.jsonl"
Q1 = (
    "Who was once considered the best kick boxer in the world, however he has been involved in a number of "
    'controversies relating to his "unsportsmanlike conducts" in the sport and crimes of violence outside of the ring.'
)
T1 = (
    "I need to search for the best kick boxer in the world who has been involved in unsportsmanlike conducts and "
    "crimes of violence outside of the ring."
)
A1 = "best kick boxer in the world unsportsmanlike conducts crimes of violence"
O1 = (
    "Badr Hari (born 8 December 1984) is a Moroccan-Dutch kickboxer. He is a former K-1 Heavyweight World Champion "
    "(2007\u20132008), It's Showtime Heavyweight World ..."
)
T2 = "Badr Hari is the person who fits the description."


@pytest.fixture(scope="module")
def data(data_dir: Path) -> DataResolver:
    return DataResolver(data_dir, offline=True)


@pytest.fixture(scope="module")
def fireact_first(data_dir: Path) -> parse.Trajectory:
    _, rec = next(read_jsonl(data_dir / FIREACT))
    return parse.parse_fireact(rec, "fireact/hotpotqa/1")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from agentflan_eval.model_resolve import converted_gguf_dir, embedded_gguf

    return AutoTokenizer.from_pretrained(converted_gguf_dir(embedded_gguf()))


def test_parse_fireact_gives_typed_steps(fireact_first):
    t = fireact_first
    assert t.query == Q1 and [x.name for x in t.tools] == ["search", "lookup"]
    assert [s.model_dump() for s in t.steps] == [
        {
            "thought": T1,
            "action": "search",
            "action_input": {"entity": A1},
            "observation": O1,
            "final_answer": None,
        },
        {"thought": T2, "action": None, "action_input": {}, "observation": None, "final_answer": "Badr Hari"},
    ]


def test_align_rewrites_react_as_natural_chat(fireact_first):
    conv = align.aligned_conversation(fireact_first)
    call = json.dumps({"name": "search", "arguments": {"entity": A1}})
    assert [(t.role, t.content, t.loss, t.capability) for t in conv.turns] == [
        ("system", align.tools_system_prompt(parse.REACT_QA_TOOLS), False, None),
        ("user", Q1, False, None),
        ("assistant", T1, True, "reasoning"),
        ("assistant", call, True, "retrieval"),
        ("tool", O1, False, None),
        ("assistant", T2, True, "reasoning"),
        ("assistant", "Badr Hari", True, "reasoning"),
    ]
    assert conv.metadata["function_call_turns"] == [3]
    assert '"name": "search"' in conv.turns[0].content and "Thought:" not in "".join(
        t.content for t in conv.turns
    )


def test_react_share_keeps_the_original_turns(fireact_first):
    conv = align.react_conversation(fireact_first)
    assert [(t.role, t.content, t.loss, t.capability) for t in conv.turns] == [
        ("user", Q1, False, None),
        ("assistant", f"Thought: {T1}\nAction: search[{A1}]", True, "instruct"),
        ("user", f"Observation: {O1}", False, None),
        ("assistant", f"Thought: {T2}\nAction: finish[Badr Hari]", True, "instruct"),
    ]  # the trailing "Observation: Episode finished, reward = True" is dropped: nothing follows it


def test_decompose_splits_tool_choice_from_arguments(fireact_first):
    conv = decompose.decompose(align.aligned_conversation(fireact_first))
    assert [(t.role, t.content, t.capability) for t in conv.turns[2:5]] == [
        ("assistant", T1, "reasoning"),
        ("assistant", "search", "retrieval"),
        ("assistant", json.dumps({"entity": A1}), "understanding"),
    ]
    assert "function_call_turns" not in conv.metadata


def test_split_react_share_is_exact_per_source(data):
    trajs = sources.load_trajectories("fireact", data, Counter(), ["hotpotqa"])
    react, rest = align.split_react(trajs, 0.1, seed=3)
    assert len(react) == 50 and len(rest) == 450
    assert {t.id for t in react} == {t.id for t in align.split_react(trajs, 0.1, seed=3)[0]}
    assert {t.id for t in react} != {t.id for t in align.split_react(trajs, 0.1, seed=4)[0]}


@pytest.mark.parametrize(
    "ratios", [decompose.DEFAULT_RATIOS, {"reasoning": 0.4, "retrieval": 0.9, "understanding": 0.2}]
)
def test_ratios_come_out_as_configured(data, ratios):
    trajs = sources.load_trajectories("fireact", data, Counter(), ["hotpotqa"])
    convs = [decompose.decompose(align.aligned_conversation(t)) for t in trajs]
    out = decompose.apply_ratios(convs, ratios, seed=0)
    holders = Counter(cap for c in convs for cap in {t.capability for t in c.turns})
    assert (
        holders["reasoning"] == 500 and holders["retrieval"] == holders["understanding"] == 499
    )  # one finish-only
    supervised = Counter(cap for c in out for cap in {t.capability for t in c.turns if t.loss})
    for cap, r in ratios.items():
        assert supervised[cap] == round(r * holders[cap]), cap
    for c in out:  # a capability is supervised in all of its turns of a conversation or in none
        for cap in decompose.AGENT_CAPABILITIES:
            assert len({t.loss for t in c.turns if t.capability == cap}) <= 1


def test_loss_spans_cover_exactly_the_supervised_assistant_turns(fireact_first, tokenizer):
    conv = decompose.apply_ratios(
        [decompose.decompose(align.aligned_conversation(fireact_first))],
        {"reasoning": 1.0, "retrieval": 0.0, "understanding": 1.0},
        seed=0,
    )[0]
    wanted = [t.content for t in conv.turns if t.loss]
    assert wanted == [T1, json.dumps({"entity": A1}), T2, "Badr Hari"]
    for name, end in (("chatml", "<|im_end|>"), ("tokenizer", "<|im_end|>"), ("agentflan", "\u0d3f")):
        r = render.render_spans(conv.turns, get_template(name), tokenizer)
        assert [r.text[a:b] for a, b in r.spans] == [w + end for w in wanted], name
        enc = render.tokenize(conv.turns, get_template(name), tokenizer)
        labelled = tokenizer.decode(
            [i for i, lab in zip(enc["input_ids"], enc["labels"]) if lab != render.IGNORE]
        )
        assert labelled == "".join(w + end for w in wanted)
        assert tokenizer.decode(enc["input_ids"]) == r.text
    llama = render.render_spans(conv.turns, get_template("llama2"), tokenizer)  # merges consecutive turns
    assert [llama.text[a:b] for a, b in llama.spans] == [
        T1,
        json.dumps({"entity": A1}) + " </s>",
        T2,
        "Badr Hari </s>",
    ]


def test_exported_jinja_renders_like_model_zoo(tokenizer, fireact_first):
    msgs = [
        Message(role=t.role, content=t.content)
        for t in decompose.decompose(align.aligned_conversation(fireact_first)).turns
    ]
    for name in ("chatml", "agentflan"):
        tok = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
        tok.chat_template = render.jinja_template(name)
        assert get_template("tokenizer").render(msgs, tok) == get_template(name).render(msgs)


def test_negative_samples_are_deterministic_for_a_seed(data, fireact_first):
    pairs = sources.load_seed_tasks(data)
    tool_sets = [("fireact", parse.REACT_QA_TOOLS), ("os", parse.OS_TOOLS), ("kg", parse.KG_TOOLS)]
    a = negatives.build_negatives(pairs, tool_sets, 5, 7, seed=1)
    assert a == negatives.build_negatives(pairs, tool_sets, 5, 7, seed=1)
    assert a != negatives.build_negatives(pairs, tool_sets, 5, 7, seed=2)
    assert Counter(c.negative for c in a) == {"a": 5, "b": 7}
    assert len({c.turns[1].content for c in a}) == 12  # no query used twice
    by_id = {p.id: p for p in pairs}
    for c in a:
        pair = by_id[c.id.split("/", 1)[1]]
        assert [t.role for t in c.turns] == ["system", "user", "assistant"]
        assert (c.turns[1].content, c.turns[2].content) == (pair.query, pair.answer)
        assert [t.loss for t in c.turns] == [False, False, True]
        if c.negative == "a":
            assert c.turns[0].content == align.tools_system_prompt([])
        else:
            tools = dict(tool_sets)[c.metadata["tool_source"]]
            assert c.turns[0].content == align.tools_system_prompt(tools) and tools


def test_parse_toolbench_winning_chain(data):
    trajs = sources.load_trajectories("toolbench", data, skipped := Counter())
    assert len(trajs) == 9 and skipped == {"toolbench: not a winning, valid trajectory": 6}
    t = next(x for x in trajs if x.id == "toolbench/G1_answer/10_ChatGPT_DFS_woFilter_w2")
    assert [(s.action, s.action_input) for s in t.steps[:2]] == [
        ("transitaires_for_transitaires", {}),
        ("transitaire_for_transitaires", {"is_id": "ACT_AGENCE_CALEDONIENNE_DE_TRANSIT"}),
    ]
    assert t.steps[-1].final_answer.startswith("The contact details of the 'Gondrand' customs agency")
    assert [x.name for x in t.tools] == ["transitaire_for_transitaires", "transitaires_for_transitaires"]
    assert t.original[2].content == "Thought: \nAction: transitaires_for_transitaires\nAction Input: {}"


def test_parse_kg_reconstructs_observations_from_the_ontology(data):
    t = sources.load_trajectories("kg", data, Counter())[0]
    assert (
        t.query
        == "Question: how many mac models used motorola 68040 processors?\nEntities: [mac, Motorola 68040]"
    )
    assert [(s.action, s.action_input, s.observation) for s in t.steps[1:6]] == [
        (
            "get_neighbors",
            {"variable": "mac", "relation": "computer.computer.includes_models"},
            "variable #0, which are instances of computer.computer",
        ),
        ("get_relations", {"variable": "Motorola 68040"}, t.steps[2].observation),
        (
            "get_neighbors",
            {"variable": "Motorola 68040", "relation": "computer.computer_processor.used_in_computers"},
            "variable #1, which are instances of computer.computer",
        ),
        (
            "intersection",
            {"variable1": "#0", "variable2": "#1"},
            "variable #2, which are instances of computer.computer",
        ),
        ("count", {"variable": "#2"}, "variable #3, which is a number"),
    ]
    assert "computer.computer.includes_models" in t.steps[0].observation
    assert "computer.computer_processor.used_in_computers" in t.steps[2].observation
    assert t.steps[-1].final_answer == "#3" and t.original[-1].content == "Final Answer: #3"


def test_parse_alfworld_and_os(data):
    alf = next(
        t for t in sources.load_trajectories("alfworld", data, Counter()) if t.id == "alfworld/react_put_0"
    )
    assert [s.action_input["action"] for s in alf.steps] == [
        "go to cabinet 1",
        "go to cabinet 2",
        "open cabinet 2",
        "take spraybottle 2 from cabinet 2",
        "go to toilet 1",
        "put spraybottle 2 in/on toilet 1",
    ]
    assert alf.steps[0].thought.startswith("First I need to find a spraybottle.")
    assert alf.steps[4].thought == "Now I find a spraybottle (2). Next, I need to put it in/on toilet 1."
    assert (
        alf.original[1].content
        == "think: First I need to find a spraybottle. A spraybottle is more likely to "
        "appear in cabinet (1-4), countertop (1), toilet (1), sinkbasin (1-2), garbagecan (1). I can check one by "
        "one, starting with cabinet 1."
    )
    os_t = sources.load_trajectories("os", data, Counter())[0]
    assert os_t.steps[0].action_input == {
        "script": 'find ~/experiment -type f -name "*.txt" -mtime -7 | wc -l'
    }
    assert os_t.steps[0].thought.endswith("(excluding directories).")
    assert (
        os_t.original[1].content.startswith("Think: To solve this problem")
        and "Act: bash" in os_t.original[1].content
    )


def test_oasst_follows_rank_zero_replies(data):
    convs = sources.load_oasst(data, Counter())
    assert len(convs) == 100
    for c in convs:
        assert c.turns[-1].role == "assistant" and c.turns[0].role == "user"
        assert all(a.role != b.role for a, b in zip(c.turns, c.turns[1:]))
    first = json.loads((data.data_dirs[0] / sources.OASST.path).read_text().splitlines()[0])["prompt"]
    best = min(first["replies"], key=lambda r: r["rank"])
    assert (convs[0].turns[0].content, convs[0].turns[1].content) == (first["text"], best["text"])


def test_hub_formats_parse_from_realistic_rows():
    row = {
        "id": "os_7",
        "conversations": [
            {
                "from": "human",
                "value": "You are an assistant that will act like a person, I'will play the role of linux "
                "operating system. ... Now, my problem is:\n\nHow many files are in /etc?",
                "loss": False,
            },
            {
                "from": "gpt",
                "value": "Think: I count the files.\n\nAct: bash\n\n```bash\nls /etc | wc -l\n```",
                "loss": True,
            },
            {"from": "human", "value": "The output of the OS:\n214", "loss": False},
            {"from": "gpt", "value": "Think: The output is 214.\n\nAct: answer(214)", "loss": True},
        ],
    }
    t = parse.parse_agentinstruct(row, "agentinstruct/os/os_7", "agentinstruct/os")
    assert [s.model_dump() for s in t.steps] == [
        {
            "thought": "I count the files.",
            "action": "bash",
            "action_input": {"input": "ls /etc | wc -l"},
            "observation": "The output of the OS:\n214",
            "final_answer": None,
        },
        {
            "thought": "The output is 214.",
            "action": None,
            "action_input": {},
            "observation": None,
            "final_answer": "214",
        },
    ]
    release = chat.release_conversation(
        {
            "id": "9",
            "conversation": [
                {"role": "system", "content": "tools", "loss": False},
                {"role": "user", "content": "q", "loss": False},
                {"role": "assistant", "content": "call", "loss": True},
                {"role": "function", "content": "obs", "loss": False},
                {"role": "assistant", "content": "done", "loss": True},
            ],
        },
        "0",
        "toolbench_negative",
    )
    assert [(t.role, t.loss) for t in release.turns] == [
        ("system", False),
        ("user", False),
        ("assistant", True),
        ("tool", False),
        ("assistant", True),
    ]
    sg = chat.sharegpt_conversation(
        {
            "conversations": [
                {"from": "human", "value": "hi"},
                {"from": "gpt", "value": "yo"},
                {"from": "human", "value": "bye"},
            ]
        },
        "x",
    )
    assert [(t.role, t.content, t.loss) for t in sg.turns] == [
        ("user", "hi", False),
        ("assistant", "yo", True),
    ]
    with pytest.raises(parse.ParseError):
        chat.sharegpt_conversation({"conversations": [{"from": "robot", "value": "?"}]}, "y")


def test_build_writes_dataset_jsonl_and_statistics(data_dir, tmp_path):
    dup = tmp_path / "chat.jsonl"
    row = {"conversations": [{"from": "human", "value": "Name a prime."}, {"from": "gpt", "value": "7"}]}
    dup.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    cfg = BuildConfig(
        out=tmp_path / "out",
        data_dir=data_dir,
        fireact_files=("hotpotqa",),
        max_per_source=30,
        sharegpt=(dup,),
        negatives_a=3,
        negatives_b=4,
        tokenizer="none",
        seed=5,
    )
    result = build(cfg)
    s = result.stats
    assert (
        s["decontaminated"]["fireact"] == 44
    )  # FireAct's HotpotQA file shares 44 questions with the eval set
    assert s["duplicates_removed"] == 1
    assert (
        s["by_source"]["fireact"] == 30
        and s["by_source"]["oasst"] == 100
        and s["by_negative_type"] == {"a": 3, "b": 4}
    )
    assert s["by_format"]["react"] == sum(round(0.1 * min(30, n)) for n in (500 - 44, 9, 1214 - 13, 24, 1000))
    assert s["samples"] == len(result.conversations) == sum(s["by_source"].values())
    rows = [json.loads(line) for line in (cfg.out / "data.jsonl").read_text().splitlines()]
    assert [Conversation.from_row(r) for r in rows] == result.conversations
    from datasets import load_from_disk

    ds = load_from_disk(str(cfg.out / "dataset"))
    assert len(ds) == len(rows) and ds[0]["conversation"] == rows[0]["conversation"]
    assert json.loads((cfg.out / "stats.json").read_text()) == s
    again = build(BuildConfig(**{**cfg.__dict__, "out": tmp_path / "again"}))
    assert [c.id for c in again.conversations] == [c.id for c in result.conversations]  # seeded: same order


def test_token_statistics_use_the_model_tokenizer(data_dir, tmp_path, tokenizer):
    cfg = BuildConfig(
        out=tmp_path / "o",
        data_dir=data_dir,
        sources=("os",),
        max_per_source=5,
        oasst=False,
        negatives_a=1,
        negatives_b=1,
    )
    tok = build(cfg).stats["tokens"]
    assert (
        tok["chat_template"] == "tokenizer"
        and tok["length_percentiles"]["p100"] >= tok["length_percentiles"]["p50"]
    )
    assert 0 < tok["supervised"] < tok["total"]


def test_tools_prompt_lists_real_tools():
    spec = ToolSpec(name="bash", description="run", parameters={})
    assert '"name": "bash"' in align.tools_system_prompt([spec])
    assert align.trim(
        [Turn(role="user", content="q"), Turn(role="assistant", content="a"), Turn(role="tool", content="o")]
    ) == [Turn(role="user", content="q"), Turn(role="assistant", content="a")]
