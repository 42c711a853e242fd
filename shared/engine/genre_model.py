"""Every kind of genre model the service can load, and their checkpoint format.

Kinds (all map one batch of 3-second patches to genre logits):
- ``head``: ``GenreHead`` on the frozen pretrained tagger's 50 tag probabilities (the
  shipped model's kind);
- ``finetune``: musicnn whose mid-end and back-end were trained further, with a new
  linear layer on its 200-unit penultimate embedding;
- ``cnn``: a residual CNN with squeeze-excitation channel attention, trained from scratch.

Each model says what it takes (``takes``: "tags" or "patches"): inference runs the pretrained
tagger on every patch anyway for the result's tags, so a head reuses them. ``multi_label``
picks the output: softmax over labels, or one sigmoid per label.

Checkpoints: one format, "genre-model/1", written by ``save_model`` (``genre-train``, and
``training/train_head.py`` for the shipped head) and read by ``load_model``: format, kind, labels,
multi_label, arch (the constructor's arguments), backbone (the tagger for tags and head inputs),
frontend (the log-mel settings the model was trained on, checked on load), temperature,
state_dict, metadata. Heads saved before it, in "genre-head/1" (format, labels, backbone,
state_dict, metadata), still load: their record is completed as a head's.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from shared.engine.audio import SAMPLE_RATE
from shared.engine.features import HOP, N_FFT, N_MELS, PATCH_FRAMES
from shared.engine.head import GenreHead
from shared.engine.model_version import bytes_version
from shared.engine.musicnn import Musicnn

MODEL_FORMAT = "genre-model/1"
HEAD_FORMAT = "genre-head/1"  # the shipped head's first format: read, no longer written
KINDS = ("head", "finetune", "cnn")
FRONTEND = {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS,
            "patch_frames": PATCH_FRAMES, "log": "log10(1 + 10000 * mel_power_float16)"}


class SqueezeExcite(nn.Module):
    """Channel attention: each channel is rescaled by a gate computed from all channels' means."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.down = nn.Linear(channels, hidden)
        self.up = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.up(F.relu(self.down(x.mean(dim=(2, 3))))))
        return x * gate[:, :, None, None]


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with batch-norm, channel attention, and a shortcut."""

    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.se = SqueezeExcite(channels_out)
        self.shortcut = nn.Identity()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.se(self.bn2(self.conv2(y)))
        return F.relu(y + self.shortcut(x))


class ResidualCNN(nn.Module):
    """From-scratch genre CNN on log-mel patches: ``depth`` stages of residual SE blocks.

    The stem halves time and frequency and every later stage halves them again while
    doubling the channels (``width`` at the first stage), which keeps it affordable on CPU.
    """

    takes = "patches"

    def __init__(self, labels: list[str], multi_label: bool = False, width: int = 32, depth: int = 4,
                 dropout: float = 0.3):
        super().__init__()
        self.labels = list(labels)
        self.multi_label = multi_label
        self.input_bn = nn.BatchNorm2d(1)  # learns the log-mel's scale, so no dataset statistics are kept
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        channels = [width * 2 ** i for i in range(depth)]
        self.stages = nn.Sequential(*[
            ResidualBlock(channels[max(i - 1, 0)], channels[i], stride=1 if i == 0 else 2) for i in range(depth)
        ])
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels[-1], len(self.labels))

    def embed(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(self.input_bn(patches.unsqueeze(1))))
        return x.mean(dim=(2, 3))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.embed(patches)))


class FineTunedMusicnn(nn.Module):
    """musicnn (pretrained, then trained further) with a new linear layer on its penultimate units."""

    takes = "patches"

    def __init__(self, labels: list[str], multi_label: bool = False, dropout: float = 0.3):
        super().__init__()
        self.labels = list(labels)
        self.multi_label = multi_label
        self.backbone = Musicnn()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.backbone.dense.out_features, len(self.labels))

    def from_frontend(self, front: torch.Tensor) -> torch.Tensor:
        """Genre logits from the backbone's front-end maps (training caches those)."""
        return self.classifier(self.dropout(self.backbone.from_frontend(front)["penultimate"]))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.from_frontend(self.backbone.frontend(patches))


def build_model(kind: str, labels: list[str], multi_label: bool, arch: dict) -> nn.Module:
    """A new, untrained model of ``kind`` (see the module notes); ``arch`` holds its sizes."""
    if kind == "head":
        model = GenreHead(labels, n_inputs=arch.get("n_inputs", 50))
        model.multi_label = multi_label
        return model
    if kind == "finetune":
        return FineTunedMusicnn(labels, multi_label, **arch)
    if kind == "cnn":
        return ResidualCNN(labels, multi_label, **arch)
    raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")


def save_model(model: nn.Module, path: str | Path, kind: str, arch: dict, backbone: str,
               metadata: dict, temperature: float = 1.0) -> None:
    torch.save(
        {
            "format": MODEL_FORMAT,
            "kind": kind,
            "labels": list(model.labels),
            "multi_label": bool(model.multi_label),
            "arch": arch,
            "backbone": backbone,
            "frontend": FRONTEND,
            "temperature": float(temperature),
            "state_dict": model.state_dict(),
            "metadata": metadata,
        },
        path,
    )


def _from_head_format(record: dict) -> dict:
    """A "genre-head/1" record with what "genre-model/1" adds: a single-label head on the tagger's tags,
    computed from the same log-mel, served without a temperature."""
    n_inputs = record["state_dict"]["mean"].numel()
    return {**record, "kind": "head", "multi_label": False, "arch": {"n_inputs": n_inputs},
            "frontend": FRONTEND, "temperature": 1.0}


def load_model(path: str | Path) -> tuple[nn.Module, dict]:
    """Any genre checkpoint, in eval mode, and its record (with ``kind``, ``temperature``, ``version``).

    The file is read once: the model and ``version`` (``model_version``'s, the first 12 hex digits of
    its SHA-256) come from the same bytes, even if the file is replaced meanwhile."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no genre model at {path} (check MODEL_PATH)")
    data = path.read_bytes()
    record = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if isinstance(record, dict) and record.get("format") == HEAD_FORMAT:
        record = _from_head_format(record)
    elif not isinstance(record, dict) or record.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a genre model checkpoint ({HEAD_FORMAT} or {MODEL_FORMAT})")
    if record["frontend"] != FRONTEND:
        raise ValueError(f"{path} was trained on other log-mel settings than this service computes: "
                         f"{record['frontend']} (ours: {FRONTEND})")
    model = build_model(record["kind"], record["labels"], record["multi_label"], record["arch"])
    model.load_state_dict(record["state_dict"])
    record["version"] = bytes_version(data)
    return model.eval(), record


def probabilities(logits: torch.Tensor, multi_label: bool, temperature: float = 1.0) -> torch.Tensor:
    """Genre probabilities from logits: one sigmoid per label, or a softmax over labels."""
    logits = logits / temperature
    return torch.sigmoid(logits) if multi_label else F.softmax(logits, dim=-1)
