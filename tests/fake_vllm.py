"""A stand-in for the three classes of vLLM's offline API we use (``LLM``, ``SamplingParams``, ``LoRARequest``)
for tests on machines without a GPU: it answers ``\\boxed{2}`` under any LoRA adapter and ``no idea`` without one
(a merged copy answers as its adapter; "no idea" runs to max_tokens, finish_reason "length"), and appends every engine start and generate call to the JSON-lines file
named by ``FAKE_VLLM_LOG``. A `tina-sweep` subprocess uses it with ``TINA_SWEEP_VLLM_MODULE=fake_vllm`` (this folder
on PYTHONPATH), so the real runner, worker and job processes run around it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass


def _log(event: dict) -> None:
    path = os.environ.get("FAKE_VLLM_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(event) + "\n")


class SamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@dataclass
class _Choice:
    text: str
    token_ids: list
    finish_reason: str = "stop"


@dataclass
class _Output:
    outputs: list


class LLM:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        # a merged copy (tina_sweep's merge_adapter stamps it) answers as its adapter does
        self.merged = os.path.exists(os.path.join(kwargs["model"], "tina_merged_from.json"))
        _log({"event": "engine", "pid": os.getpid(), "merged": self.merged,
              "kwargs": {k: v for k, v in kwargs.items() if k != "tokenizer"}})

    def generate(self, prompts, sampling_params, lora_request=None, use_tqdm=False):
        prompts = list(prompts)
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        requests = lora_request if isinstance(lora_request, list) else [lora_request] * len(prompts)
        _log({"event": "generate", "pid": os.getpid(), "merged": self.merged, "prompts": len(prompts),
              "adapters": sorted({r.lora_name for r in requests if r is not None}),
              "base_prompts": sum(r is None for r in requests), "seeds": sorted({p.kwargs.get("seed") for p in params})})
        lora_works = os.environ.get("FAKE_VLLM_BROKEN_LORA") != "1"  # 1: adapters silently ignored, a known pitfall
        return [_Output([_Choice("so \\boxed{2}", [1, 2, 3]) if (r is not None and lora_works) or self.merged
                         else _Choice("no idea", [1, 2, 3], "length") for _ in range(p.kwargs.get("n", 1))])
                for p, r in zip(params, requests)]


@dataclass
class LoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str
