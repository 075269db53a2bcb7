"""The stand-in vLLM package the vLLM backend tests install (see ``fake_vllm`` in conftest.py)."""

# A stand-in for the vllm package with the parts of its API the backend uses: LLM(**kwargs),
# llm.llm_engine.model_config.max_model_len/.dtype, SamplingParams(**kwargs), and the engine's
# add_request(id, {"prompt_token_ids": ids}, params) / step() / abort_request([id]). Replies are assigned
# in arrival order; step() finishes one request per call, newest first, so replies come back out of
# submission order as they can in vLLM.
FAKE_VLLM = """
import os
import threading
import time
from types import SimpleNamespace

ENGINES = []
REPLIES = []  # (text, n_tokens, finish_reason) per request; none left: "<CUDA_VISIBLE_DEVICES>|<prompt len>"
HOLD = threading.Event()  # cleared: step() finishes nothing (requests stay in flight)
if not os.environ.get("FAKE_VLLM_HOLD"):
    HOLD.set()
MARK = os.environ.get("FAKE_VLLM_MARK")  # a file: one line per add_request ("add") and engine shutdown


def _mark(what):
    if MARK:
        with open(MARK, "a") as f:
            f.write(what + "\\n")
STEP_ERRORS = []  # exceptions step() raises, one per call, before finishing anything
ADD_ERRORS = []  # exceptions add_request() raises (vLLM refusing a prompt), one per call


class SamplingParams:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


class Engine:
    def __init__(self, config):
        self.model_config = config
        self.waiting = []  # (request id, ids, params), in arrival order
        self.aborted = []
        self.steps = 0

    def add_request(self, request_id, prompt, params):
        if ADD_ERRORS:
            raise ADD_ERRORS.pop(0)
        _mark("add")
        ids = prompt["prompt_token_ids"]
        echo = (f"{os.environ.get('CUDA_VISIBLE_DEVICES')}|{len(ids)}", 3, "stop")
        self.waiting.append((request_id, ids, REPLIES.pop(0) if REPLIES else echo))  # replies in arrival order
        ENGINES[-1].requests.append((ids, params))

    def abort_request(self, request_ids):
        self.aborted.extend(request_ids)
        self.waiting = [w for w in self.waiting if w[0] not in request_ids]

    def step(self):
        self.steps += 1
        if STEP_ERRORS:
            raise STEP_ERRORS.pop(0)
        if not HOLD.is_set() or not self.waiting:
            HOLD.wait(0.01)
            return []
        request_id, ids, (text, n, reason) = self.waiting.pop()
        return [SimpleNamespace(request_id=request_id, finished=True, prompt_token_ids=ids, outputs=[
            SimpleNamespace(text=text, token_ids=list(range(n)), finish_reason=reason)])]


class LLM:
    def __init__(self, model, **kwargs):
        if kwargs.get("fail_start"):
            raise RuntimeError("CUDA out of memory")
        engine_pid = os.fork() if kwargs.get("fork_engine") else None  # as vLLM forks its engine process,
        if engine_pid == 0:                                            # which inherits every open pipe
            parent, deadline = os.getppid(), time.time() + 60
            while os.getppid() == parent and time.time() < deadline:
                time.sleep(0.1)
            time.sleep(max(0.0, min(30.0, deadline - time.time())))  # outlives a killed parent, pipes held
            os._exit(0)
        self.kwargs = {"model": model, **kwargs}
        self.requests = []
        config = SimpleNamespace(max_model_len=kwargs.get("max_model_len") or 2048, dtype="torch.bfloat16")
        ENGINES.append(self)
        self.llm_engine = Engine(config)
        self.llm_engine.engine_core = SimpleNamespace(shutdown=lambda: _shutdown(engine_pid))


def _shutdown(engine_pid):
    _mark("shutdown")
    if engine_pid:
        os.kill(engine_pid, 9)
        os.waitpid(engine_pid, 0)
"""
