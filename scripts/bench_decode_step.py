"""One decoding step of the hf backend's loop against ``model.generate``'s, same rows and context. Prints figures.

The agent loop's own ms per step (scripts/bench_throughput.py prints it) mixes the model with whatever the
loop adds; this isolates the step: B random prompts of L tokens, N new tokens each,
  cold    first pass: every prompt prefilled, every shape new to the decoding thread;
  warm    the same prompts again: prefixes kept, shapes already seen by that thread;
  profile (--profile) a few steps under torch.profiler on a fresh thread, kernels sorted by time;
  generate  ``model.generate`` on the same prompts, minus its prefill.
This is how cuDNN attention's per-shape planning (1.2 ms of CPU per layer per step on an H200) was found;
--cudnn-attention leaves it on, to compare.

    python scripts/bench_decode_step.py --random-shape llama-2-7b --rows 32 --prompt-tokens 2000 --profile
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from agentflan_eval.backends.decode import Batcher, DecodeStats, Job, Row
    from agentflan_eval.backends.prefix_cache import PrefixCache
    from agentflan_eval.model_zoo.random_weights import SHAPES, cached_random_llama

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="a model folder (or use --random-shape)")
    ap.add_argument("--random-shape", choices=sorted(SHAPES), default=None)
    ap.add_argument("--tokenizer", help="with --random-shape: the tokenizer folder to give it")
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--prompt-tokens", type=int, default=1000)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument(
        "--cudnn-attention",
        action="store_true",
        help="leave cuDNN attention on (the hf backend turns it off on CUDA)",
    )
    a = ap.parse_args()

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    if dev == "cuda" and not a.cudnn_attention:
        torch.backends.cuda.enable_cudnn_sdp(False)  # as HFBackend does
    path = a.model
    if path is None:
        if not (a.random_shape and a.tokenizer):
            ap.error("give --model, or --random-shape with --tokenizer")
        path = str(
            cached_random_llama(
                a.random_shape, a.tokenizer, dtype=str(dtype).removeprefix("torch."), device=dev
            )
        )
    model = AutoModelForCausalLM.from_pretrained(Path(path), dtype=dtype).to(dev).eval()
    if not PrefixCache.supports(model):
        ap.error(
            f"{path}: its cache is not a plain key/value stack (sliding window?); the hf backend decodes it "
            "with generate(), so there is no step of ours to time"
        )
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    vocab = model.get_input_embeddings().weight.shape[0]
    prompts = torch.randint(
        min(100, vocab - 1),
        min(4000, vocab),
        (a.rows, a.prompt_tokens),
        generator=torch.Generator().manual_seed(0),
    )
    prefixes = PrefixCache(model, dev, capacity=2 * a.rows + 4)
    batcher = Batcher(model, prefixes, a.rows, eos_ids=set(), decode_text=lambda ids: "")
    print(
        f"{path} on {dev} ({dtype}), {a.rows} rows, {a.prompt_tokens}-token prompts, {a.new_tokens} new tokens"
        + (
            f", cuDNN attention {'on' if torch.backends.cuda.cudnn_sdp_enabled() else 'off'}"
            if dev == "cuda"
            else ""
        )
    )

    def jobs(n_new: int) -> list[Job]:
        return [Job(row=Row(prompt=p.tolist()), max_new=n_new, temperature=0.0, stops=()) for p in prompts]

    for label in ("cold", "warm"):
        batcher.stats = DecodeStats()  # this pass's own figures
        reused, computed = prefixes.reused_tokens, prefixes.computed_tokens
        todo = jobs(a.new_tokens)
        sync()
        t0 = time.perf_counter()
        batcher.submit(todo)
        for j in todo:
            j.future.result()
        elapsed = time.perf_counter() - t0
        s = batcher.stats
        print(
            f"ours, {label}: {elapsed:.2f} s; admitting {s.admit_seconds:.2f} s; {s.steps} steps "
            f"of {s.row_steps / max(1, s.steps):.1f} rows, {s.step_seconds / max(1, s.steps) * 1e3:.1f} ms a step; "
            f"prompt tokens {prefixes.computed_tokens - computed} computed, {prefixes.reused_tokens - reused} kept"
        )
    batcher.close()

    if a.profile:  # the profiler records the thread that starts it, so admit and step here (a fresh thread)
        from torch.profiler import ProfilerActivity, profile

        fresh = Batcher(model, prefixes, a.rows, eos_ids=set(), decode_text=lambda ids: "")
        todo = jobs(10**6)
        for j in todo:
            j.future.set_running_or_notify_cancel()
        fresh._admit(todo)  # a diagnostic drives the loop by hand
        fresh._step()
        sync()
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev == "cuda" else [])
        with profile(activities=acts) as prof:
            t0 = time.perf_counter()
            for _ in range(8):
                fresh._step()
            sync()
        print(f"ours, profiled on a fresh thread: {(time.perf_counter() - t0) / 8 * 1e3:.1f} ms a step")
        key = "cuda_time_total" if dev == "cuda" else "cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=12, max_name_column_width=50))
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8, max_name_column_width=50))
        fresh._reset()  # its row buffers: generate needs the memory (a 7B at 32 x 2,000 tokens: 35 GiB)
        del fresh
    prefixes._entries.clear()  # give the kept caches' memory to generate
    if dev == "cuda":
        torch.cuda.empty_cache()

    ids = prompts.to(dev)
    with torch.inference_mode():
        sync()
        t0 = time.perf_counter()
        model(input_ids=ids, logits_to_keep=1)
        sync()
        prefill = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=a.new_tokens,
            min_new_tokens=a.new_tokens,
            do_sample=False,
        )
        sync()
        total = time.perf_counter() - t0
    # the prefill gives the first token: the other new tokens take one step each
    print(
        f"generate: {total:.2f} s; its prefill alone {prefill:.2f} s; about "
        f"{(total - prefill) / max(1, a.new_tokens - 1) * 1e3:.1f} ms a step"
    )


if __name__ == "__main__":
    main()
