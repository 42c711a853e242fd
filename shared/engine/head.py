"""The genre head: a softmax regression on the pretrained tagger's 50 tag probabilities.

Tag probabilities are turned into logits (they are sigmoid outputs, so logits are
the scale the tagger reasons on), standardised with training statistics, and
mapped linearly to genre logits. Small on purpose: with a few hundred training
tracks a linear head generalises better than anything deeper on top of a frozen
tagger.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from shared.engine.model_version import model_version

HEAD_FORMAT = "genre-head/1"
_EPS = 1e-6


def tag_logits(tags: torch.Tensor) -> torch.Tensor:
    tags = tags.clamp(_EPS, 1 - _EPS)
    return torch.log(tags) - torch.log1p(-tags)


class GenreHead(nn.Module):
    # What inference feeds it (the tagger's tag probabilities) and how its logits become
    # probabilities; genre-model checkpoints (shared/engine/genre_model.py) may set multi_label.
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


def save_head(head: GenreHead, path: str | Path, backbone: str, metadata: dict) -> None:
    torch.save(
        {
            "format": HEAD_FORMAT,
            "labels": head.labels,
            "backbone": backbone,
            "state_dict": head.state_dict(),
            "metadata": metadata,
        },
        path,
    )


def load_head(path: str | Path) -> tuple[GenreHead, dict]:
    """The head and its checkpoint record (labels, backbone, metadata, version)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no genre head at {path} (check MODEL_PATH)")
    record = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(record, dict) or record.get("format") != HEAD_FORMAT:
        raise ValueError(f"{path} is not a genre head checkpoint ({HEAD_FORMAT})")
    head = GenreHead(record["labels"], n_inputs=record["state_dict"]["mean"].numel())
    head.load_state_dict(record["state_dict"])
    # The version names the exact weights, so stored results can be tied to them.
    record["version"] = model_version(path)
    return head.eval(), record
