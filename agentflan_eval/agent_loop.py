"""The agent loop: many episodes advance together, one batched model call per turn.

A pool of up to ``concurrency`` live episodes is kept full: when one ends, the next sample starts
at once, so the batch stays wide instead of draining to the slowest episode. Each finished
episode is handed to ``on_done`` immediately (the runner appends it to disk).

With a streaming backend (a remote server) there are no turns: each episode's next request is
submitted as soon as its last reply is applied, so the server never idles while the slowest
reply of a turn finishes. Environments still run only in this thread, one reply at a time.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field

from agentflan_eval.backends.base import Backend, GenerationRequest
from agentflan_eval.benchmark import Benchmark, Environment, Sample
from agentflan_eval.records import (
    Completion,
    EpisodeRecord,
    EpisodeStatus,
    ErrorInfo,
    FinishReason,
    GenerationConfig,
    Message,
    Score,
    Step,
)

log = logging.getLogger(__name__)


@dataclass
class _Live:
    sample: Sample
    env: Environment | None  # None only for an episode whose environment could not be built
    prompt: list[Message]
    messages: list[Message]
    steps: list[Step] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    repeat: int = 0


@dataclass(frozen=True)
class Attempt:
    """One run of a sample: with ``--repeats N`` each sample is run N times, each with its own seeds."""

    sample: Sample
    repeat: int = 0


def run_episodes(
    bench: Benchmark,
    samples: Sequence[Sample | Attempt],
    backend: Backend,
    gen: GenerationConfig,
    concurrency: int,
    on_done: Callable[[EpisodeRecord], None],
    on_first_request: Callable[[GenerationRequest], None] | None = None,
) -> None:
    """Run every sample (or attempt: a sample and its repeat index) to its end with ``concurrency``
    episodes in flight (the run's one knob, on every backend): a lock-step backend gets batches of that
    many, a streaming one that many requests. ``on_first_request`` sees the request that opens the first
    episode started (the runner keeps its rendering in the manifest)."""
    gen = gen.model_copy(
        update={
            "stop": list(dict.fromkeys([*gen.stop, *bench.stop])),
            "max_new_tokens": bench.max_new_tokens or gen.max_new_tokens,
        }
    )
    if backend.streaming:
        _run_streaming(bench, samples, backend, gen, concurrency, on_done, on_first_request)
        return
    queue = _attempts(samples)
    live: list[_Live] = []
    try:
        while queue or live:
            while queue and len(live) < concurrency:
                started = _start(bench, queue.popleft(), on_done)
                if started is not None:
                    on_first_request = _first(bench, started, on_first_request)
                    live.append(started)
            if not live:
                continue
            completions = _generate(backend, bench, live, gen)
            still: list[_Live] = []
            for ep, comp in zip(live, completions):
                status, error = _advance(bench, ep, comp)
                if status is None:
                    still.append(ep)
                else:
                    on_done(_finish(bench, ep, status, error))
            live = still
    finally:
        for ep in live:  # interrupted: close what is open; unfinished episodes are not recorded
            _close(ep.env)


def _attempts(samples: Sequence[Sample | Attempt]) -> deque[Attempt]:
    return deque(s if isinstance(s, Attempt) else Attempt(s) for s in samples)


def _run_streaming(
    bench: Benchmark,
    samples: Sequence[Sample | Attempt],
    backend: Backend,
    gen: GenerationConfig,
    concurrency: int,
    on_done: Callable[[EpisodeRecord], None],
    on_first_request: Callable[[GenerationRequest], None] | None = None,
) -> None:
    queue = _attempts(samples)
    pending: dict[Future[Completion], _Live] = {}
    try:
        while queue or pending:
            while queue and len(pending) < concurrency:
                started = _start(bench, queue.popleft(), on_done)
                if started is not None:
                    on_first_request = _first(bench, started, on_first_request)
                    pending[_submit(backend, bench, started, gen)] = started
            if not pending:
                continue
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                ep = pending.pop(fut)
                status, error = _advance(bench, ep, _result(fut))
                if status is None:
                    pending[_submit(backend, bench, ep, gen)] = ep
                else:
                    on_done(_finish(bench, ep, status, error))
    finally:
        for (
            fut,
            ep,
        ) in pending.items():  # interrupted: as in the batched loop, unfinished episodes are dropped
            fut.cancel()
            _close(ep.env)


def _submit(backend: Backend, bench: Benchmark, ep: _Live, gen: GenerationConfig) -> Future[Completion]:
    try:
        return backend.submit(_request(bench, ep), gen)
    except Exception as e:  # noqa: BLE001 - a request that cannot even start fails only its episode
        fut: Future[Completion] = Future()
        fut.set_result(
            Completion(text="", finish_reason=FinishReason.ERROR, error=f"{type(e).__name__}: {e}")
        )
        return fut


def _result(fut: Future[Completion]) -> Completion:
    try:
        return fut.result()
    except Exception as e:  # noqa: BLE001 - a backend bug fails only this episode
        return Completion(text="", finish_reason=FinishReason.ERROR, error=f"{type(e).__name__}: {e}")


def _request(bench: Benchmark, ep: _Live) -> GenerationRequest:
    return GenerationRequest(
        messages=bench.fit_prompt(ep.messages),
        task=bench.name,
        sample_id=ep.sample.id,
        turn=len(ep.steps),
        overflow=bench.request_overflow(),
        prompt_format=bench.prompt_format,
        repeat=ep.repeat,
    )


def _first(
    bench: Benchmark, ep: _Live, hook: Callable[[GenerationRequest], None] | None
) -> Callable[[GenerationRequest], None] | None:
    """Show ``hook`` the episode's opening request; None afterwards, so it sees only the first one."""
    if hook is not None:
        try:
            hook(_request(bench, ep))
        except Exception as e:  # noqa: BLE001 - a manifest detail never fails the episode
            log.warning("%s: could not record the first prompt: %s", bench.name, e)
    return None


def _start(bench: Benchmark, attempt: Attempt, on_done: Callable[[EpisodeRecord], None]) -> _Live | None:
    env, sample = None, attempt.sample
    try:
        env = bench.make_env(sample)
        prompt = env.reset()
    except Exception as e:  # noqa: BLE001 - an environment that cannot start fails only its episode
        log.warning("%s/%s: environment failed to start: %s", bench.name, sample.id, e)
        ep = _Live(sample, env, [], [], repeat=attempt.repeat)
        on_done(_finish(bench, ep, EpisodeStatus.ENV_ERROR, ErrorInfo(type=type(e).__name__, message=str(e))))
        return None
    return _Live(sample, env, list(prompt), list(prompt), repeat=attempt.repeat)


def _generate(
    backend: Backend, bench: Benchmark, live: list[_Live], gen: GenerationConfig
) -> list[Completion]:
    reqs = [_request(bench, ep) for ep in live]
    try:
        return backend.generate(reqs, gen)
    except Exception as e:  # noqa: BLE001 - retry one by one so one bad request fails one episode
        log.warning("batched generation failed (%s); retrying one request at a time", e)
    out = []
    for req in reqs:
        try:
            out.extend(backend.generate([req], gen))
        except Exception as e:  # noqa: BLE001
            out.append(
                Completion(text="", finish_reason=FinishReason.ERROR, error=f"{type(e).__name__}: {e}")
            )
    return out


def _advance(bench: Benchmark, ep: _Live, comp: Completion) -> tuple[EpisodeStatus | None, ErrorInfo | None]:
    """Apply one reply; returns the final status when the episode ends here."""
    if comp.finish_reason == FinishReason.ERROR:
        return EpisodeStatus.MODEL_ERROR, ErrorInfo(
            type="ModelError", message=comp.error or "generation failed"
        )
    if comp.finish_reason == FinishReason.CONTEXT_LIMIT:
        return EpisodeStatus.CONTEXT_LIMIT, None
    assert ep.env is not None, "a live episode always has its environment"
    action = ep.env.parse_reply(comp.text) or bench.parse_action(comp.text)
    try:
        obs = ep.env.step(action)
    except Exception as e:  # noqa: BLE001 - an environment crash fails this episode only
        ep.steps.append(
            Step(
                reply=comp.text,
                action=action,
                prompt_tokens=comp.prompt_tokens,
                completion_tokens=comp.completion_tokens,
                seconds=comp.seconds,
                truncated_tokens=comp.truncated_tokens,
            )
        )
        return EpisodeStatus.ENV_ERROR, ErrorInfo(type=type(e).__name__, message=str(e))
    ep.steps.append(
        Step(
            reply=comp.text,
            action=action,
            observation=obs.text,
            prompt_tokens=comp.prompt_tokens,
            completion_tokens=comp.completion_tokens,
            seconds=comp.seconds,
            truncated_tokens=comp.truncated_tokens,
        )
    )
    if obs.restart and obs.text is not None and not obs.done:
        ep.messages = [*ep.prompt[:-1], Message(role=obs.role, content=obs.text)]
    else:
        ep.messages.append(Message(role="assistant", content=comp.text))
        if obs.text is not None and not obs.done:
            ep.messages.append(Message(role=obs.role, content=obs.text))
    if obs.done:
        return obs.status or EpisodeStatus.COMPLETED, None
    if len(ep.steps) >= bench.max_turns:
        return EpisodeStatus.TURN_LIMIT, None
    return None, None


def _finish(bench: Benchmark, ep: _Live, status: EpisodeStatus, error: ErrorInfo | None) -> EpisodeRecord:
    info: dict = {}
    if ep.env is not None:
        try:
            info = ep.env.info()
        except Exception as e:  # noqa: BLE001
            error = error or ErrorInfo(type=type(e).__name__, message=f"env.info failed: {e}")
        _close(ep.env)
    try:
        score = bench.score(ep.sample, ep.steps, info)
    except Exception as e:  # noqa: BLE001 - a scorer crash is recorded, never fatal
        score = Score(value=0.0, success=False, details={"scoring_error": f"{type(e).__name__}: {e}"})
    return EpisodeRecord(
        task=bench.name,
        sample_id=ep.sample.id,
        subset=ep.sample.subset,
        prompt=ep.prompt,
        steps=ep.steps,
        status=status,
        score=score,
        error=error,
        env_info=info,
        prompt_tokens=sum(s.prompt_tokens for s in ep.steps),
        completion_tokens=sum(s.completion_tokens for s in ep.steps),
        seconds=time.perf_counter() - ep.started,
        repeat=ep.repeat,
    )


def _close(env: Environment | None) -> None:
    if env is None:
        return
    try:
        env.close()
    except Exception as e:  # noqa: BLE001
        log.warning("environment close failed: %s", e)
