"""The genre head: a softmax regression on the pretrained tagger's 50 tag probabilities.

Tag probabilities are turned into logits (they are sigmoid outputs, so logits are
the scale the tagger reasons on), standardised with training statistics, and
mapped linearly to genre logits. Small on purpose: with a few hundred training
tracks a linear head generalises better than anything deeper on top of a frozen
tagger.

Saved and loaded as any genre model, kind "head" (``shared.engine.genre_model``).
"""
from __future__ import annotations

import torch
from torch import nn

_EPS = 1e-6


def tag_logits(tags: torch.Tensor) -> torch.Tensor:
    tags = tags.clamp(_EPS, 1 - _EPS)
    return torch.log(tags) - torch.log1p(-tags)


class GenreHead(nn.Module):
    # What inference feeds it (the tagger's tag probabilities) and how its logits become
    # probabilities; a checkpoint (shared/engine/genre_model.py) may set multi_label.
    takes = "tags"
    multi_label = False

    def __init__(self, labels: list[str], n_inputs: int = 50):
        super().__init__()
        self.labels = list(labels)
        self.register_buffer("mean", torch.zeros(n_inputs))
        self.register_buffer("std", torch.ones(n_inputs))
        self.linear = nn.Linear(n_inputs, len(self.labels))

    def forward(self, tags: torch.Tensor) -> torch.Tensor:
        """Genre logits from tag probabilities, (batch, 50) → (batch, n_labels)."""
        return self.linear((tag_logits(tags) - self.mean) / self.std)

