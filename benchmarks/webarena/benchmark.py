"""WebArena (held-out): 812 web tasks on self-hosted sites, in a real browser. Runs only with the sites.

Paper: Zhou et al. 2023 (WebArena); Agent-FLAN's held-out column (AgentTuning's setup: WebArena's
two-shot CoT prompt over the accessibility tree, at most 30 actions). Data: the 812 task configs of
``config_files/test.raw.json`` at web-arena-x/webarena f62e0b9 (the revision whose evaluator schema
the documented evaluators read; 531 of AgentTuning's older copy's eval specs differ). Site URLs come
from ``--webarena-urls`` (JSON string or file mapping ``__SHOPPING__`` etc. to URLs) or WebArena's
environment variables (SHOPPING, SHOPPING_ADMIN, REDDIT, GITLAB, MAP, WIKIPEDIA, HOMEPAGE); tasks
whose sites are all given are run. Login: WebArena's ``.auth/*_state.json`` files from
``$WEBARENA_AUTH_DIR`` (default ``./.auth``), else a login with WebArena's accounts, once per run.
Prompt, reply budget and action parsing: AgentTuning's (agentflan_eval.benchmarks.webarena.prompt): each turn
the intro, the two examples and only the current observation (its first 1,920 cl100k tokens).
Metric: success rate, an episode scoring the product of its evaluators (agentflan_eval.benchmarks.webarena.evaluators);
``fuzzy_match`` references go to the judge at ``--webarena-judge`` (an OpenAI-compatible endpoint), else to a
recorded stand-in.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field

from agentflan_eval.benchmark import Benchmark, Environment, Observation, Sample, TaskOptions
from agentflan_eval.benchmarks.common.browser.actions import ActionParseError, answer_of, parse_browser_action
from agentflan_eval.benchmarks.common.browser.driver import BrowserSession, browser_unavailable
from agentflan_eval.benchmarks.common.browser.env import BrowserEnv
from agentflan_eval.benchmarks.webarena import prompt
from agentflan_eval.benchmarks.webarena.evaluators import collect_program_html, evaluate
from agentflan_eval.benchmarks.webarena.judge import JUDGE_MODEL, Judge, OpenAIJudge, StandIn
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataFile, DataResolver, read_json
from agentflan_eval.errors import AgentFlanError
from agentflan_eval.records import Action, Decoding, Deviation, Message, Overflow, PromptFormat, Score, Step

log = logging.getLogger(__name__)

CONFIG = DataFile(
    "webarena/config_files/test.raw.json",
    "web-arena-x/webarena config_files/test.raw.json @ f62e0b9",
    url="https://raw.githubusercontent.com/web-arena-x/webarena/"
    "f62e0b99bc7d9e0cd996d0cf5ebb2225780ec279/config_files/test.raw.json",
)
SITES = ("shopping", "shopping_admin", "reddit", "gitlab", "map", "wikipedia", "homepage")
# WebArena shows the agent these names for the local sites (and maps them back for goto).
DISPLAY = {
    "reddit": "http://reddit.com",
    "shopping": "http://onestopmarket.com",
    "shopping_admin": "http://luma.com/admin",
    "gitlab": "http://gitlab.com",
    "wikipedia": "http://wikipedia.org",
    "map": "http://openstreetmap.org",
    "homepage": "http://homepage.com",
}
ACCOUNTS = {
    "reddit": ("MarvelsGrantMan136", "test1234"),
    "gitlab": ("byteblaze", "hello1234"),
    "shopping": ("emma.lopez@gmail.com", "Password.123"),
    "shopping_admin": ("admin", "admin1234"),
}
AUTH_DIR_ENV = "WEBARENA_AUTH_DIR"


class WebArenaSample(Sample):
    task_id: int
    intent: str
    sites: list[str]
    config: dict[str, Any]  # the raw config, placeholders unresolved


def site_urls(spec: str | None) -> dict[str, str]:
    """``--webarena-urls`` (JSON text or file) over WebArena's environment variables; keys like
    ``__SHOPPING__``, ``SHOPPING`` or ``shopping``."""
    urls = {s: os.environ[s.upper()].rstrip("/") for s in SITES if os.environ.get(s.upper())}
    if spec:
        text = Path(spec).read_text(encoding="utf-8") if Path(spec).is_file() else spec
        try:
            given = json.loads(text)
        except json.JSONDecodeError as e:
            raise AgentFlanError(f"--webarena-urls is neither a JSON file nor JSON text: {e.msg}") from None
        for key, url in given.items():
            site = key.strip("_").lower()
            if site not in SITES:
                raise AgentFlanError(f"--webarena-urls: unknown site {key!r}; expected {', '.join(SITES)}")
            urls[site] = str(url).rstrip("/")
    return urls


def resolve(config: dict[str, Any], urls: dict[str, str]) -> dict[str, Any]:
    """WebArena's generate_test_data: placeholders replaced with the site URLs throughout."""
    text = json.dumps(config)
    for site, url in urls.items():
        text = text.replace(f"__{site.upper()}__", url)
    return json.loads(text)


class WebArenaEnv(BrowserEnv):
    homepage = True

    def __init__(self, sample: WebArenaSample, bench: WebArena):
        super().__init__()
        self.sample, self.bench = sample, bench
        self.config = resolve(sample.config, bench.urls)
        self.evidence: dict[str, Any] = {}
        self.format_error: str | None = None  # PREVIOUS ACTION for the turn after a reply with no action

    def open_session(self) -> BrowserSession:
        return BrowserSession(
            allowed_hosts=self.bench.hosts,
            storage_state=self.bench.login_state(self.config),
            allowed_origins=self.bench.urls.values(),  # WebArena's sites, nowhere else
        )

    def reset(self) -> list[Message]:
        return prompt.messages(super().reset()[-1].content)

    def step(self, action: Action) -> Observation:
        self.format_error = None if action.valid else prompt.format_error(action.raw)
        return super().step(action)

    def _turn(self, previous_action: str) -> str:
        """The current turn from the page's whole observation, cut by cl100k tokens (not the shared
        browser prompt's character cut); after a reply with no action, WebArena's format reminder."""
        assert self.session is not None
        if self.format_error is not None:
            previous_action, self.format_error = self.format_error, None
        view = self.session.observe()
        return prompt.current(view.text, self.display_url(view.url), self.objective, previous_action)

    def start(self, session: BrowserSession) -> str:
        first, *more = self.config["start_url"].split(" |AND| ")
        session.page.goto(first)
        for url in more:  # extra start pages open in new tabs; the first stays current
            session.context.new_page().goto(url)
        return self.config["intent"]

    def display_url(self, url: str) -> str:
        for site, local in sorted(self.bench.urls.items(), key=lambda kv: -len(kv[1])):
            url = url.replace(local, DISPLAY[site])
        return url

    def real_url(self, url: str) -> str:
        return self.bench.real_urls(url)

    def info(self) -> dict[str, Any]:
        """The final URL, then what every program_html target selects (this navigates the page)."""
        from playwright.sync_api import Error

        out = {**super().info(), "site_urls": self.bench.urls}
        if (
            self.session is None
            or self.session.closed
            or "program_html" not in self.config["eval"]["eval_types"]
        ):
            return out
        try:
            out["program_html"] = collect_program_html(
                self.session.page, self.config["eval"], self.bench.urls
            )
        except (Error, urllib.error.URLError, ValueError, KeyError) as e:
            out["program_html_error"] = f"{type(e).__name__}: {e}"
        return out


class WebArenaOptions(TaskOptions):
    webarena_urls: str | None = Field(
        default=None,
        description="WebArena task: JSON mapping of site placeholders to URLs, or a file holding it",
    )
    webarena_judge: str | None = Field(
        default=None,
        description="WebArena task: OpenAI-compatible API base of the fuzzy_match judge (WebArena's GPT-4); "
        "without it a stand-in scores (a recorded deviation)",
    )
    webarena_judge_model: str = Field(
        default=JUDGE_MODEL, description="WebArena task: the judge's model name"
    )


class WebArena(Benchmark):
    name = "webarena"
    suite = "held-out"
    metric = "success rate"
    scale = 1.0
    max_turns = 30
    n_standard = 812
    decoding = Decoding(
        temperature=1.0, top_p=0.9, source="AgentTuning eval_heldout/webarena run.py defaults (sampled)"
    )
    overflow = Overflow.BENCHMARK
    overflow_note = "only the current observation is sent, cut to its first 1,920 cl100k tokens"
    prompt_format = PromptFormat.CHAT
    history = "none: the intro, the two examples and the current observation (prompt_constructor.py)"
    data_files = (CONFIG,)
    max_new_tokens = prompt.MAX_NEW_TOKENS
    paper = "Zhou et al. 2023 (WebArena); protocol: AgentTuning / Agent-FLAN held-out"
    Options = WebArenaOptions
    options: WebArenaOptions

    def __init__(self, config: RunConfig, data: DataResolver):
        super().__init__(config, data)
        self._states: dict[str, Any] = {}  # storage state per WebArena auth file name, after a login

    @cached_property
    def urls(self) -> dict[str, str]:
        return site_urls(self.options.webarena_urls)

    @cached_property
    def judge(self) -> Judge:
        if self.options.webarena_judge:
            return OpenAIJudge(self.options.webarena_judge, self.options.webarena_judge_model)
        return StandIn()

    @cached_property
    def hosts(self) -> tuple[str, ...]:
        return tuple(sorted({urllib.parse.urlparse(u).hostname or "" for u in self.urls.values()} - {""}))

    def unavailable(self) -> str | None:
        if not self.urls:
            return (
                "needs the self-hosted WebArena sites: pass --webarena-urls (JSON mapping __SHOPPING__, "
                "__SHOPPING_ADMIN__, __REDDIT__, __GITLAB__, __MAP__, __WIKIPEDIA__, __HOMEPAGE__ to URLs) or set "
                "SHOPPING, SHOPPING_ADMIN, REDDIT, GITLAB, MAP, WIKIPEDIA, HOMEPAGE"
            )
        down = [f"{s} ({u})" for s, u in self.urls.items() if not _reachable(u)]
        if down:
            return f"WebArena site(s) not reachable: {', '.join(down)}"
        return browser_unavailable() or super().unavailable()

    def deviations(self) -> list[Deviation]:
        out = []
        if isinstance(self.judge, StandIn):
            out.append(
                Deviation(
                    task=self.name,
                    what=f"string_match fuzzy_match scored by a {self.judge.name} instead of WebArena's "
                    f"GPT-4 judge ({JUDGE_MODEL})",
                    why="no --webarena-judge given; affects the 118 tasks with fuzzy_match references",
                )
            )
        out.append(
            Deviation(
                task=self.name,
                what="the accessibility tree is this harness's rendering of WebArena's (element ids in "
                "document order, not Chromium's node ids); cl100k cut with encode_ordinary (a page holding "
                "a special-token string such as <|endoftext|> made upstream's encode raise and stop the task)",
                why="ids stable across runs so recorded runs replay; a page's text is data, not an error",
            )
        )
        missing = [s for s in SITES if s not in self.urls]
        if missing:
            out.append(
                Deviation(
                    task=self.name,
                    what=f"only tasks on the given sites; no URL for {', '.join(missing)}",
                    why="the other tasks need sites that were not given",
                )
            )
        return out

    def load_samples(self) -> list[Sample]:
        """The tasks whose sites are all given; all 812 when none is (to rescore a stored run)."""
        out: list[Sample] = []
        for c in read_json(self.data.path(CONFIG)):
            if not self.urls or all(s in self.urls for s in c["sites"]):
                out.append(
                    WebArenaSample(
                        id=str(c["task_id"]),
                        subset=c["sites"][0],
                        task_id=c["task_id"],
                        intent=c["intent"],
                        sites=c["sites"],
                        config=c,
                    )
                )
        return out

    def make_env(self, sample: Sample) -> Environment:
        assert isinstance(sample, WebArenaSample)
        return WebArenaEnv(sample, self)

    def parse_action(self, reply: str) -> Action:
        """AgentTuning's ``extract_action``: the first one-line fenced block, display URLs mapped back to the
        sites (``map_url_to_local``), then ``create_id_based_action``; anything else is a parsing failure."""
        text = prompt.extract_action(reply)
        if text is None:
            return Action(name="invalid", argument="no action in ``` ```", valid=False, raw=reply)
        text = self.real_urls(text)
        try:
            act = parse_browser_action(text)
        except ActionParseError as e:
            return Action(name="invalid", argument=str(e), valid=False, raw=reply)
        return Action(name=act.type, argument=text.strip(), raw=reply)

    def real_urls(self, text: str) -> str:
        """WebArena's display names for its sites (http://onestopmarket.com, ...) replaced by their URLs here."""
        for site, shown in sorted(DISPLAY.items(), key=lambda kv: -len(kv[1])):
            if site in self.urls:
                text = text.replace(shown, self.urls[site])
        return text

    def fit_prompt(self, messages: list[Message]) -> list[Message]:
        """No history: the fixed opening and the newest turn (the episode's chat keeps the rest for the record)."""
        return prompt.messages(messages[-1].content)

    def score(self, sample: Sample, steps: Sequence[Step], env_info: dict[str, Any]) -> Score:
        assert isinstance(sample, WebArenaSample)
        spec = resolve(sample.config, env_info.get("site_urls") or self.urls)["eval"]
        answer = answer_of([s.action for s in steps])
        value, parts = evaluate(
            spec,
            answer,
            env_info.get("final_url"),
            env_info.get("program_html"),
            intent=sample.intent,
            judge=self.judge,
        )
        return Score(
            value=value, success=value == 1.0, details={"answer": answer, "judge": self.judge.name, **parts}
        )

    # -- login ---------------------------------------------------------------------------------
    def login_state(self, config: dict[str, Any]) -> dict[str, Any] | str | None:
        """WebArena's saved storage state for the task's sites, or a fresh login (cached per run)."""
        name = config.get("storage_state")
        if not name or not config.get("require_login"):
            return None
        path = Path(os.environ.get(AUTH_DIR_ENV, ".auth")) / Path(name).name
        if path.is_file():
            return str(path)
        if name not in self._states:
            self._states[name] = self._login(Path(name).name.rsplit("_", 1)[0].split("."))
        return self._states[name]

    def _login(self, sites: list[str]) -> dict[str, Any]:
        """WebArena's auto_login steps for each site, in one context whose storage state is kept."""
        session = BrowserSession(allowed_hosts=self.hosts, allowed_origins=self.urls.values())
        try:
            page = session.page
            for site in sites:
                user, password = ACCOUNTS[site]
                base = self.urls[site]
                if site == "shopping":
                    page.goto(f"{base}/customer/account/login/")
                    page.get_by_label("Email", exact=True).fill(user)
                    page.get_by_label("Password", exact=True).fill(password)
                    page.get_by_role("button", name="Sign In").click()
                elif site == "reddit":
                    page.goto(f"{base}/login")
                    page.get_by_label("Username").fill(user)
                    page.get_by_label("Password").fill(password)
                    page.get_by_role("button", name="Log in").click()
                elif site == "shopping_admin":
                    page.goto(base)
                    page.get_by_placeholder("user name").fill(user)
                    page.get_by_placeholder("password").fill(password)
                    page.get_by_role("button", name="Sign in").click()
                elif site == "gitlab":
                    page.goto(f"{base}/users/sign_in")
                    page.get_by_test_id("username-field").fill(user)
                    page.get_by_test_id("password-field").fill(password)
                    page.get_by_test_id("sign-in-button").click()
                page.wait_for_load_state("load")
            return session.context.storage_state()
        finally:
            session.close()


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except (urllib.error.URLError, OSError, ValueError):
        return False
