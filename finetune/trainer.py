"""trl's SFTTrainer with a prefix-shared step: the shared prompt runs once per group, then every example's tail.

``finetune.batches`` groups examples that share their prompt prefix. A step runs the prefix with a key/value
cache, repeats the cache across the group, and runs the right-padded tails on top of it. Two modes:

- **exact** (``train.prefix_gradient: true``, the GPU config): the cache keeps its autograd graph, so the LoRA
  weights also get the prefix's gradient, and the loss and gradients equal training every example in full.
- **frozen prefix** (the CPU default): the prefix's key/values are computed without gradient, under the current
  adapter, and reused for ``train.prefix_refresh_steps`` steps. The assistant's prompt is ~5,500 tokens of
  system prompt and tool schemas (SmolLM2), and its backward pass is most of a step's cost and memory on two
  cores (measured: 77 s and 6 GB for the prefix alone); the frozen mode trains only through the tails, which
  attend to a prefix that tracks the adapter. The adapter's effect on the prefix is then not trained directly,
  a stop-gradient approximation that the eval suites, not the loss, have to justify.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from trl import SFTTrainer

from finetune.batches import IGNORE


@functools.cache
def _cache_keyword(forward: Any) -> str:
    """The forward's key/value cache argument: ``cache`` from transformers 5.2x, ``past_key_values`` before.

    A GPU image may carry an older transformers than the pinned one; an unknown keyword would be swallowed by
    ``**kwargs`` and the tails would silently run without their prefix, so the name is read off the signature.
    """
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def _forward_kwarg(model: Any) -> str:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _cache_keyword(type(base).forward)


def _prefix(model: Any, prefix: Any, *, grad: bool) -> tuple[Any, Any]:
    """The prefix's per-layer (keys, values) and its last position's logits."""
    import torch

    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        out = model(input_ids=prefix, use_cache=True, logits_to_keep=1)
    cache = out.past_key_values if getattr(out, "cache", None) is None else out.cache
    layers = [(layer.keys, layer.values) for layer in cache.layers]
    return layers, out.logits[:, -1:, :]


def group_loss(model: Any, batch: dict[str, Any], *, prefix_state: tuple[Any, Any] | None = None) -> tuple[Any, int]:
    """Mean cross-entropy over the group's labelled tokens, and how many there were.

    ``prefix_state`` (layers, last logits) is a frozen prefix to reuse; None runs the prefix with gradient.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812
    from transformers import DynamicCache

    prefix, tails = batch["prefix_ids"], batch["tail_ids"]
    labels, mask = batch["tail_labels"], batch["tail_mask"]
    size = tails.shape[0]
    if prefix.shape[1]:
        layers, last = prefix_state if prefix_state is not None else _prefix(model, prefix, grad=True)
        config = getattr(model, "config", None)
        cache = DynamicCache([(k.expand(size, -1, -1, -1), v.expand(size, -1, -1, -1)) for k, v in layers],
                             config=config)
        attention = torch.cat([torch.ones(size, prefix.shape[1], dtype=mask.dtype, device=mask.device), mask], 1)
        tail_logits = model(input_ids=tails, attention_mask=attention, use_cache=True,
                            **{_forward_kwarg(model): cache}).logits
        # Position t of a tail is predicted from position t-1; the first from the prefix's last position.
        logits = torch.cat([last.expand(size, 1, -1), tail_logits[:, :-1, :]], dim=1)
        targets = labels
    else:
        logits = model(input_ids=tails, attention_mask=mask).logits[:, :-1, :]
        targets = labels[:, 1:]
    count = int((targets != IGNORE).sum())
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                           ignore_index=IGNORE, reduction="sum")
    return loss / max(count, 1), count


class PrefixSharedSFTTrainer(SFTTrainer):  # type: ignore[misc]
    """SFTTrainer whose step trains one prefix-sharing group (see the module docstring)."""

    def __init__(self, *args: Any, prefix_gradient: bool = False, prefix_refresh_steps: int = 10,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prefix_gradient = prefix_gradient
        self.prefix_refresh_steps = max(1, prefix_refresh_steps)
        self._frozen: dict[tuple[int, ...], tuple[int, Any]] = {}

    def _frozen_prefix(self, model: Any, prefix: Any) -> tuple[Any, Any]:
        """The cached no-grad prefix state, recomputed once it is ``prefix_refresh_steps`` steps old."""
        key = tuple(prefix[0].tolist())
        step = self.state.global_step
        cached = self._frozen.get(key)
        if cached is None or step - cached[0] >= self.prefix_refresh_steps:
            cached = (step, _prefix(model, prefix, grad=False))
            self._frozen[key] = cached
        return cached[1]  # type: ignore[no-any-return]

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        """The group's completion loss (trl's own metrics assume plain batches, so they are not computed)."""
        state = None
        if not self.prefix_gradient and inputs["prefix_ids"].shape[1]:
            state = self._frozen_prefix(model, inputs["prefix_ids"])
        loss, _ = group_loss(model, inputs, prefix_state=state)
        return (loss, None) if return_outputs else loss


def validation_loss(model: Any, rows: list[dict[str, Any]], collate: Any) -> float | None:
    """Token-weighted mean loss over held-out groups, without gradients."""
    import torch

    if not rows:
        return None
    total, tokens = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for row in rows:
            batch = {k: v.to(model.device) for k, v in collate([row]).items()}
            loss, count = group_loss(model, batch)
            total += float(loss) * count
            tokens += count
    model.train(was_training)
    return total / max(tokens, 1)
