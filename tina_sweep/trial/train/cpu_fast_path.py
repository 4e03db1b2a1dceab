"""The same GRPO step in less CPU time (issue 15): ``training.cpu_fast_path``.

GRPO samples ``num_generations`` completions of each prompt, and TRL's transformers path computes that prompt once
per completion: in the rollout's prefill and again in the policy's forward and backward. On a CPU, where compute is
the limit, that is most of a step (the cpu scale's prompts are ~72 tokens, its completions 24). And at rollout
batch sizes (8 rows) PyTorch's default fp32 linear kernel reads its weights at a fraction of the memory bandwidth.

The fast path changes the order of the work, not the maths -- every product is still fp32 (or the bf16 autocast
``training.cpu_autocast`` asks for), on the same weights, with TRL's own log-prob kernel:

- **prompts computed once**: the distinct prompts of a batch run once; their key/value cache is then copied to
  every completion of that prompt, for the rollout (``generate_sharing_prompts``) and for the policy's forward and
  backward (``shared_prompt_logps``; gradients flow back through the copies into the shared prompt pass);
- **prepacked rollout weights**: during generation each frozen linear layer (the base weights under LoRA and the
  LM head; PEFT adds the LoRA branch on top as usual) runs on a copy of its weight reordered once for oneDNN
  (``prepacked_linears``), which decodes at batch 8 about twice as fast as ``F.linear``.

Each piece falls back to TRL's own path where it does not apply (multimodal inputs, vLLM, logit soft-capping or
scaling, ``cast_lm_head_to_fp32``, several processes, a GPU, a batch whose prompts are all distinct).
``tests/test_cpu_fast_path.py`` checks log-probs, gradients and greedy rollouts against TRL's path.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
from torch import nn
from trl import GRPOTrainer
from trl.extras.profiling import profiling_context
from trl.kernels import ChunkedLogProbFunction
from trl.models import unwrap_model_for_generation
from trl.trainer.utils import pad

from tina_sweep.trial.models import cache_keyword, returned_cache

# the config fields that make TRL's fused log-prob head scale or cap logits: a model with any of them set takes
# TRL's own path
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier",
                     "logits_scaling")
_VOCAB_CHUNK = 32768  # vocabulary columns per tile, as TRL's fused head (trl/trainer/utils.py _CHUNKED_LOGPROB_CHUNK_SIZE)


def prompt_groups(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """For a batch of (padded) prompt rows: the row of each distinct prompt (``first``) and, for every row, which
    distinct prompt it is (``inverse``, so ``rows == distinct[inverse]``); None when no prompt repeats."""
    rows = torch.cat([prompt_ids, prompt_mask.to(prompt_ids.dtype)], dim=1)
    distinct, inverse = torch.unique(rows, dim=0, return_inverse=True)
    if distinct.size(0) == rows.size(0):
        return None
    order = torch.arange(rows.size(0), device=rows.device)
    first = torch.full((distinct.size(0),), rows.size(0), dtype=torch.long, device=rows.device)
    first = first.scatter_reduce(0, inverse, order, reduce="amin")
    return first, inverse


def _causal_lm(model: nn.Module) -> nn.Module:
    """The transformers causal LM inside a PEFT model (LoRA layers injected in place), or the model itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def logit_transforms(causal_lm: nn.Module) -> list[str]:
    """The logit scaling/capping fields this model's config sets (the fast path supports none)."""
    text_config = causal_lm.config.get_text_config()
    return [name for name in _LOGIT_TRANSFORMS if getattr(text_config, name, None) is not None]


def shared_prompt_logps(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        logits_to_keep: int, temperature: float, compute_entropy: bool
                        ) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """Per-token log-probs (and entropies) of the last ``logits_to_keep`` tokens of each row, as TRL's
    ``_get_per_token_logps_and_entropies`` computes them, with each distinct prompt (the tokens before them) run
    once. None when no prompt repeats (nothing to share). Differentiable: use under the caller's autocast."""
    causal_lm = _causal_lm(model)
    start = input_ids.size(1) - logits_to_keep
    groups = prompt_groups(input_ids[:, :start], attention_mask[:, :start]) if start > 0 else None
    if groups is None:
        return None
    first, inverse = groups
    backbone = causal_lm.base_model
    # positions 0..L-1 over the padded rows, as TRL's single forward of prompt + completion (no position_ids)
    prompt = backbone(input_ids=input_ids[first, :start], attention_mask=attention_mask[first, :start],
                      use_cache=True)
    cache = returned_cache(prompt)
    cache.batch_select_indices(inverse)  # every completion attends to its own prompt's keys and values
    completion = backbone(input_ids=input_ids[:, start:], attention_mask=attention_mask,
                          **{cache_keyword(backbone): cache})
    # the hidden state before each completion token predicts it: the prompt's last, then the completion's own
    hidden = torch.cat([prompt.last_hidden_state[:, -1:][inverse], completion.last_hidden_state[:, :-1]], dim=1)
    targets, scored = input_ids[:, start:], attention_mask[:, start:].bool()
    head = causal_lm.get_output_embeddings()
    outputs = ("log_probs", "entropy") if compute_entropy else ("log_probs",)
    log_probs, entropy, *_ = ChunkedLogProbFunction.apply(hidden[scored], head.weight, head.bias, targets[scored],
                                                          temperature, _VOCAB_CHUNK, None, 1.0, outputs)
    log_probs = log_probs.new_zeros(scored.shape).masked_scatter(scored, log_probs)
    if entropy is not None:
        entropy = entropy.new_zeros(scored.shape).masked_scatter(scored, entropy)
    return log_probs, entropy


@torch.no_grad()
def generate_sharing_prompts(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                             **generate_kwargs) -> torch.Tensor:
    """``model.generate`` on left-padded prompts, the prefill of each distinct prompt run once: all but its last
    token go through the model with generate's own positions (from the attention mask), the cache is copied to
    every row repeating that prompt, and generate continues from it."""
    groups = prompt_groups(input_ids, attention_mask) if input_ids.size(1) > 1 else None
    if groups is None:
        return model.generate(input_ids=input_ids, attention_mask=attention_mask, **generate_kwargs)
    first, inverse = groups
    head_ids, head_mask = input_ids[first, :-1], attention_mask[first, :-1]
    positions = (head_mask.long().cumsum(-1) - 1).masked_fill(head_mask == 0, 0)
    prefill = model(input_ids=head_ids, attention_mask=head_mask, position_ids=positions, use_cache=True,
                    logits_to_keep=1)
    cache = returned_cache(prefill)
    cache.batch_select_indices(inverse)
    keyword = cache_keyword(_causal_lm(model))
    return model.generate(input_ids=input_ids, attention_mask=attention_mask, **{keyword: cache}, **generate_kwargs)


def _packed_forward(original, packed: torch.Tensor, bias: torch.Tensor | None, x: torch.Tensor, *args, **kwargs):
    if x.dtype != torch.float32 or x.device.type != "cpu":
        return original(x, *args, **kwargs)
    output = torch.ops.mkldnn._linear_pointwise(x.to(packed.dtype).contiguous(), packed, bias, "none", [], "")
    return output.to(x.dtype)


def prepacking_available() -> bool:
    """Whether this PyTorch can reorder linear weights for oneDNN (x86 and ARM CPU builds with mkldnn)."""
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
        return False
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(torch.ones(4, 4), 2)
        torch.ops.mkldnn._linear_pointwise(torch.ones(2, 4), packed, None, "none", [], "")
    except (RuntimeError, NotImplementedError):
        return False
    return True


# id(linear) -> (its weight's data_ptr, the weight's version, the packed dtype, packed weight, bias in that dtype)
PackedWeights = dict[int, tuple[int, int, torch.dtype, torch.Tensor, torch.Tensor | None]]


@contextlib.contextmanager
def prepacked_linears(model: nn.Module, packed_weights: PackedWeights, rows: int = 8,
                      dtype: torch.dtype = torch.float32) -> Iterator[int]:
    """Within the block, every frozen fp32 CPU linear layer of ``model`` (the base weights under LoRA, the LM head;
    not the trainable LoRA matrices) computes with its weight reordered for oneDNN (``rows``: the batch the layout
    is tuned for), in ``dtype`` (bfloat16: the product bf16 autocast would compute, fp32 in and out); yields how
    many layers were swapped. The reordered copies are kept in ``packed_weights`` and
    reused while a weight is unchanged (same storage, no in-place update), so frozen weights are reordered once per
    training run. Inference only: use it under ``torch.no_grad()``."""
    swapped: list[nn.Module] = []
    try:
        if prepacking_available():
            for module in model.modules():
                weight = getattr(module, "weight", None)
                if (not isinstance(module, nn.Linear) or weight.requires_grad or weight.dtype != torch.float32
                        or weight.device.type != "cpu"):
                    continue
                key = (weight.data_ptr(), weight._version, dtype)
                cached = packed_weights.get(id(module))
                if cached is None or cached[:3] != key:
                    cached = (*key, torch.ops.mkldnn._reorder_linear_weight(weight.detach().to(dtype), rows),
                              None if module.bias is None else module.bias.detach().to(dtype))
                    packed_weights[id(module)] = cached
                module.forward = functools.partial(_packed_forward, module.forward, cached[3], cached[4])
                swapped.append(module)
        yield len(swapped)
    finally:
        for module in swapped:
            del module.forward  # the class's forward again


class FastCpuGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer with ``training.cpu_fast_path``: prompts computed once per group and prepacked rollout
    weights, on a single CPU process; everything else is TRL's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._packed_weights: PackedWeights = {}  # the frozen weights, reordered once for rollouts

    def _fast_path_applies(self) -> bool:
        return (self.accelerator.num_processes == 1 and self.accelerator.device.type == "cpu"
                and not self.args.cast_lm_head_to_fp32
                and not logit_transforms(_causal_lm(self.accelerator.unwrap_model(self.model))))

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **multimodal):
        if (self._fast_path_applies() and not compute_aux_loss and all(v is None for v in multimodal.values())
                and (batch_size is None or batch_size >= input_ids.size(0))):
            with self.accelerator.autocast():
                shared = shared_prompt_logps(self.accelerator.unwrap_model(model), input_ids, attention_mask,
                                             logits_to_keep, self.temperature, compute_entropy)
            if shared is not None:
                return shared[0], shared[1], None
        return super()._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size, compute_entropy=compute_entropy,
            compute_aux_loss=compute_aux_loss, **multimodal)

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        if (self.use_vllm or self.use_transformers_continuous_batching or images is not None or multimodal_fields
                or not self._fast_path_applies()):
            return super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                 has_tool_images=has_tool_images)
        # TRL's regular transformers path (left-padded prompts, generate, mask after the first end token), with the
        # prompts' prefill shared and the weights prepacked
        pad_id, device = self._tokenizer.pad_token_id, self.accelerator.device
        prompts = [torch.tensor(ids) for ids in prompt_ids]
        input_ids = pad(prompts, padding_value=pad_id, padding_side="left",
                        pad_to_multiple_of=self.pad_to_multiple_of).to(device)
        attention_mask = pad([torch.ones_like(ids) for ids in prompts], padding_value=0, padding_side="left",
                             pad_to_multiple_of=self.pad_to_multiple_of).to(device)
        with (profiling_context(self, "transformers.generate"),
              unwrap_model_for_generation(self.model_wrapped, self.accelerator,
                                          gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                                          generation_kwargs=self.generation_kwargs,
                                          gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs
                                          ) as unwrapped_model,
              torch.no_grad(),
              prepacked_linears(unwrapped_model, self._packed_weights, rows=input_ids.size(0),
                                dtype=torch.bfloat16 if self.args.bf16 else torch.float32)):
            output = generate_sharing_prompts(unwrapped_model, input_ids, attention_mask,
                                              generation_config=self.generation_config)
        completion_ids = output[:, input_ids.size(1):]
        is_eos = torch.isin(completion_ids, torch.tensor(self.eos_token_ids, device=device))
        eos_idx = torch.full((is_eos.size(0),), is_eos.size(1), dtype=torch.long, device=device)
        eos_idx[is_eos.any(dim=1)] = is_eos.int().argmax(dim=1)[is_eos.any(dim=1)]
        sequence_indices = torch.arange(is_eos.size(1), device=device).expand(is_eos.size(0), -1)
        completion_mask = sequence_indices <= eos_idx.unsqueeze(1)
        return [c[m].tolist() for c, m in zip(completion_ids.cpu(), completion_mask.cpu(), strict=True)], None
