"""Evaluation computes the prefix every prompt of a batch shares (system prompt, worked examples) once: the same
completions as the usual left-padded batch, greedy or sampled."""

from __future__ import annotations

import pytest

from conftest import smoke_spec
from tina_sweep.trial.evaluate import local

QUESTIONS = ["What is 1 + 2 ?", "What is 12 + 30 and 7 ?", "How many is 5 ?", "What is 99 ?"]


@pytest.fixture(scope="module")
def model_and_prompts(tiny_model_dir):
    spec = smoke_spec()
    model, tokenizer = local.load_eval_model(spec.model, None, "float32")
    prompts = [tokenizer.apply_chat_template(
        [{"role": "system", "content": "Give only the final number inside boxed . Answer A : 5"},
         {"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)
        for question in QUESTIONS]
    return model, tokenizer, prompts


def test_shared_prefix_length():
    assert local.shared_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    assert local.shared_prefix_length([[1, 2], [1, 2]]) == 1  # each row keeps a token of its own
    assert local.shared_prefix_length([[1, 2, 3]]) == 0
    assert local.shared_prefix_length([[4, 2], [1, 2]]) == 0


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_completions_match_the_left_padded_batch(model_and_prompts, monkeypatch, temperature):
    model, tokenizer, prompts = model_and_prompts
    spec = smoke_spec(**{"eval.temperature": temperature, "eval.max_new_tokens": 8, "eval.top_k": 0,
                         "eval.top_p": 1.0}).eval
    calls = []
    original = local.generate_sharing_prefix
    monkeypatch.setattr(local, "generate_sharing_prefix",
                        lambda *args, **kwargs: calls.append(args[2]) or original(*args, **kwargs))
    shared = local.generate(model, tokenizer, prompts, spec, seed=3)
    assert len(calls) == 1 and calls[0] >= local.MIN_SHARED_PREFIX  # the system turn ran once
    monkeypatch.setattr(local, "MIN_SHARED_PREFIX", 10 ** 9)
    plain = local.generate(model, tokenizer, prompts, spec, seed=3)
    assert len(calls) == 1  # the usual batch this time
    assert shared == plain
    texts, tokens, truncated = shared
    assert len(texts) == 4 and tokens > 0 and any(t[0] for t in texts)
