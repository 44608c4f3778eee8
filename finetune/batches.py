"""Tokenised examples grouped into batches that share one prompt prefix, so the prefix is computed once.

Every assistant example starts with the same ~thousands of tokens (the system prompt and the 20 tool schemas)
and differs only in a short tail (the rep's message, the turn note, the target). On two CPU cores that prefix
is nearly all the cost, so a batch of examples that share it runs the prefix once, expands its key/value cache
to the batch, and runs only the tails (``finetune.trainer``). Gradients still flow through the prefix (the
LoRA on q/k/v/o changes it), so the result is the same loss as training on the full sequences, at a fraction
of the compute. The shared prefix is found from the token ids (the longest common prefix of a prompt kind's
examples, stopped before any example's first trained token), so no template knowledge is needed.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from finetune.render import Rendered

IGNORE = -100
"""Label of a token the loss skips (the prompt): only the completion is learned."""


@dataclass(frozen=True)
class Tokenised:
    """One example's token ids and labels (IGNORE over the prompt), and its prompt kind."""

    ids: list[int]
    labels: list[int]
    kind: str

    @property
    def first_label(self) -> int:
        """Index of the first trained token."""
        return next(i for i, label in enumerate(self.labels) if label != IGNORE)


@dataclass
class Group:
    """Examples that share ``prefix`` (token ids); each tail is the rest of one example."""

    prefix: list[int]
    tails: list[list[int]] = field(default_factory=list)
    tail_labels: list[list[int]] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        """Tokens the model runs for this group (the prefix once, then every tail)."""
        return len(self.prefix) + sum(map(len, self.tails))

    @property
    def unshared_tokens(self) -> int:
        """Tokens the same examples would cost one by one."""
        return len(self.prefix) * len(self.tails) + sum(map(len, self.tails))

    def as_row(self) -> dict[str, Any]:
        """The group as a dataset row."""
        return {"prefix_ids": self.prefix, "tail_ids": self.tails, "tail_labels": self.tail_labels}


def tokenise(rendered: Rendered, tokenizer: Any, *, kind: str) -> Tokenised:
    """Token ids of prompt + completion, with only the completion's tokens labelled."""
    text = rendered.prompt + rendered.completion
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    start = len(rendered.prompt)
    ids = list(encoded["input_ids"])
    # A token is trained when it ends inside the completion (a token straddling the boundary is too).
    labels = [tok if end > start else IGNORE for tok, (_, end) in zip(ids, encoded["offset_mapping"], strict=True)]
    if all(label == IGNORE for label in labels):
        raise ValueError("the completion is empty")
    return Tokenised(ids=ids, labels=labels, kind=kind)


def _common_prefix(rows: list[Tokenised]) -> int:
    """Length of the token prefix every row shares, stopping before any row's first trained token."""
    limit = min(min(r.first_label for r in rows), min(len(r.ids) for r in rows) - 1)
    first = rows[0].ids
    for i in range(limit):
        token = first[i]
        if any(r.ids[i] != token for r in rows[1:]):
            return i
    return limit


def group(rows: list[Tokenised], *, batch_size: int, seed: int) -> list[Group]:
    """Shuffle (seeded) and cut each prompt kind's rows into groups of ``batch_size`` sharing a prefix."""
    by_kind: dict[str, list[Tokenised]] = defaultdict(list)
    for row in rows:
        by_kind[row.kind].append(row)
    rng = random.Random(seed)
    groups = []
    for kind in sorted(by_kind):
        members = by_kind[kind]
        shared = _common_prefix(members)
        rng.shuffle(members)
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            groups.append(Group(prefix=chunk[0].ids[:shared], tails=[r.ids[shared:] for r in chunk],
                                tail_labels=[r.labels[shared:] for r in chunk]))
    rng.shuffle(groups)
    return groups


def collate(rows: list[dict[str, Any]], *, pad_id: int) -> dict[str, Any]:
    """One group as tensors: the prefix (1 × P), the right-padded tails (B × T), their labels and mask."""
    import torch

    if len(rows) != 1:
        raise ValueError("each step trains one prefix-sharing group (per-device batch size 1)")
    row = rows[0]
    width = max(map(len, row["tail_ids"]))
    tails, labels, mask = [], [], []
    for ids, labs in zip(row["tail_ids"], row["tail_labels"], strict=True):
        pad = width - len(ids)
        tails.append(list(ids) + [pad_id] * pad)
        labels.append(list(labs) + [IGNORE] * pad)
        mask.append([1] * len(ids) + [0] * pad)
    return {
        "prefix_ids": torch.tensor([row["prefix_ids"]], dtype=torch.long),
        "tail_ids": torch.tensor(tails, dtype=torch.long),
        "tail_labels": torch.tensor(labels, dtype=torch.long),
        "tail_mask": torch.tensor(mask, dtype=torch.long),
    }
