"""A tiny random Qwen2 (hidden size 64, 2 layers) with a word-level tokenizer built in code.

It powers the ``smoke`` scale and the tests: a GRPO + LoRA step takes a fraction of a second on CPU and
nothing is downloaded. Its answers are random, so it measures plumbing, never learning.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
WORDS = ("What is Give only the final number inside boxed answer Put your within Answer A The of and a to in how "
         "many much").split()
SPECIALS = ["<|pad|>", "<|unk|>", "<|im_start|>", "<|im_end|>"]


def build_tiny_tokenizer():
    """A word-level tokenizer: words, single digits, punctuation and whitespace are tokens; decoding is exact."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pieces = WORDS + list(string.digits) + list(string.punctuation) + [" ", "\n", "  "] + \
        ["system", "user", "assistant"] + list(string.ascii_letters)
    vocab: dict[str, int] = {}
    for token in SPECIALS + pieces:
        vocab.setdefault(token, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|unk|>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[A-Za-z]+|\d|\s+|[^\w\s]"), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.add_special_tokens(SPECIALS)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<|pad|>", unk_token="<|unk|>",
                                   bos_token=None, eos_token="<|im_end|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(vocab_size: int, seed: int = 0):
    """A randomly initialised Qwen2ForCausalLM: hidden 64, 2 layers, 4 heads (2 key/value heads)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, pad_token_id=0, eos_token_id=3, bos_token_id=None)
    return Qwen2ForCausalLM(config)


def ensure_tiny_model(target: Path) -> Path:
    """Build and save the tiny model once (deterministic: seed 0)."""
    if (target / "model.safetensors").exists():
        return target
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_model(len(tokenizer))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    partial = target.with_name(target.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    config_file = partial / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"  # see models.load_tokenizer
    config_file.write_text(json.dumps(config, indent=2))
    import shutil

    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target
