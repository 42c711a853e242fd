"""The musicnn tagger (Pons & Serra, ISMIR 2019 LBD) written in PyTorch.

Input: log-mel patches (batch, 187 frames, 96 bands). The network has three parts:
- front-end: "timbral" convolutions spanning 38 and 67 mel bands over 7 frames, and
  "temporal" convolutions of 128, 64 and 32 frames on single bands, each max-pooled
  over frequency;
- mid-end: three 1-D convolutions over time with residual connections;
- back-end: max and mean over time, a 200-unit dense layer (the "penultimate"
  embedding) and a dense layer of 50 tag logits.

Weights come from the checkpoints inside the ``musicnn`` wheel; ``load_pretrained``
maps TensorFlow variables onto this module. Two details keep the port exact: TF
puts the extra pad of an even kernel after the signal, and its batch-norm epsilon
is 1e-3. Every convolution is followed by ReLU and *then* batch-norm.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from shared.engine.features import N_MELS
from shared.engine.tf_checkpoint import read_checkpoint

TF_BN_EPS = 1e-3
PRETRAINED = ("MSD_musicnn", "MTT_musicnn")
WHEEL_INSTALL = "pip install --no-deps musicnn==0.1.0"


class MusicnnWeightsMissing(RuntimeError):
    """The musicnn wheel (which carries the pretrained weights) is not installed."""


def _bn(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=TF_BN_EPS)


def _conv_max_int8(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Max over frequency of a one-channel "valid" conv, computed in int8: (B, T', F) → (B, C, T).

    Weights are quantised per channel and each segment's input on its own (so batching never
    changes a result). The input is centred first so int8's range is used fully; the shift
    comes back as a per-channel constant. Dequantising is a positive scale per channel, so
    the max is taken on the integers and only the maxima are turned back into floats.
    """
    channels, _, kt, kf = weight.shape
    w = weight.reshape(channels, kt * kf)
    w_scale = w.abs().amax(1).clamp_min(1e-12) / 127
    wq = torch.round(w / w_scale[:, None]).to(torch.int8)
    lo, hi = x.amin(dim=(1, 2)), x.amax(dim=(1, 2))
    center = (lo + hi) / 2
    x_scale = ((hi - lo) / 2).clamp_min(1e-12) / 127
    xq = torch.round((x - center[:, None, None]) / x_scale[:, None, None]).to(torch.int8)
    cols = xq.unfold(1, kt, 1).unfold(2, kf, 1)  # (B, T, F_out, kt, kf)
    batch, time, freqs = cols.shape[:3]
    # .contiguous(): for one segment reshape can return an overlapping view, which _int_mm misreads.
    acc = torch._int_mm(cols.reshape(-1, kt * kf).contiguous(), wq.t().contiguous())
    top = acc.view(batch, time, freqs, channels).amax(dim=2).float()  # (B, T, C)
    shift = center[:, None] * (wq.float() * w_scale[:, None]).sum(1)  # (B, C)
    pooled = top * (x_scale[:, None, None] * w_scale) + (shift + bias)[:, None, :]
    return pooled.transpose(1, 2)


class _FreqPooledConv(nn.Module):
    """Conv2d over (time, mel) → ReLU → BN → max over the remaining mel axis.

    Computed in a cheaper, exactly equal order: pool first, then ReLU and BN on the
    pooled map, which is a fraction of the size. ReLU is increasing and BN is, per
    channel, an affine map that is increasing where its scale is positive and
    decreasing where negative; so the max after them is the max of the conv output,
    or its min for negative-scale channels. We get that min as -max of the
    negated filter (negation is exact in floating point), so one max pass does.
    """

    def __init__(self, filters: int, time: int, freq: int):
        super().__init__()
        self.conv = nn.Conv2d(1, filters, (time, freq))
        self.bn = nn.BatchNorm2d(filters, eps=TF_BN_EPS)
        self.time = time

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        # "same" padding in time, TF style: an even kernel gets its extra pad after.
        before = (self.time - 1) // 2
        return F.pad(x, (0, 0, before, self.time - 1 - before))

    def forward(self, x: torch.Tensor, int8: bool = False) -> torch.Tensor:
        x = self._pad(x)
        sign = torch.where(self.bn.weight < 0, -1.0, 1.0)
        weight, bias = self.conv.weight * sign[:, None, None, None], self.conv.bias * sign
        if int8:
            pooled = _conv_max_int8(x[:, 0], weight, bias)
        else:
            pooled = F.conv2d(x, weight, bias).amax(dim=3)
        pooled = pooled * sign[:, None]  # (batch, filters, time)
        return F.batch_norm(F.relu(pooled), self.bn.running_mean, self.bn.running_var,
                            self.bn.weight, self.bn.bias, False, 0.0, self.bn.eps)

    def forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        """The same block in the reference order (slower); kept to check the fast order."""
        return self.bn(F.relu(self.conv(self._pad(x)))).amax(dim=3)


class _MidendConv(nn.Module):
    def __init__(self, in_channels: int, filters: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, filters, 7, padding=3)
        self.bn = _bn(filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class Musicnn(nn.Module):
    """musicnn with ``num_classes`` tag outputs (50 for the MSD and MTT models).

    Set ``int8 = True`` to run the front-end convolutions (~85% of the arithmetic) in int8
    on CPU: about twice as fast, tag probabilities within ~0.02 of float32.
    """

    def __init__(self, num_classes: int = 50, midend_filters: int = 64, backend_units: int = 200):
        super().__init__()
        self.int8 = False
        self.input_bn = nn.BatchNorm2d(1, eps=TF_BN_EPS)
        timbral = int(1.6 * 128)
        temporal = int(1.6 * 32)
        self.timbral = nn.ModuleList([
            _FreqPooledConv(timbral, 7, int(0.4 * N_MELS)),
            _FreqPooledConv(timbral, 7, int(0.7 * N_MELS)),
        ])
        self.temporal = nn.ModuleList([
            _FreqPooledConv(temporal, k, 1) for k in (128, 64, 32)
        ])
        frontend_channels = 2 * timbral + 3 * temporal  # 561
        self.midend = nn.ModuleList([
            _MidendConv(frontend_channels, midend_filters),
            _MidendConv(midend_filters, midend_filters),
            _MidendConv(midend_filters, midend_filters),
        ])
        self.embedding_channels = frontend_channels + 3 * midend_filters  # 753
        self.pool_bn = _bn(2 * self.embedding_channels)
        self.dense = nn.Linear(2 * self.embedding_channels, backend_units)
        self.dense_bn = _bn(backend_units)
        self.classifier = nn.Linear(backend_units, num_classes)

    def features(self, patches: torch.Tensor, reference_order: bool = False) -> dict[str, torch.Tensor]:
        """All outputs the reference implementation exposes, for one batch of patches.

        ``reference_order`` runs the front-end in the original, slower layer order.
        """
        return self.from_frontend(self.frontend(patches, reference_order))

    def frontend(self, patches: torch.Tensor, reference_order: bool = False) -> torch.Tensor:
        """The front-end's feature maps, (batch, 187, 96) → (batch, 561, time).

        Split from ``from_frontend`` so training can run the costly, frozen front-end once
        per patch and fine-tune what follows it.
        """
        x = self.input_bn(patches.unsqueeze(1))  # (batch, 1, time, mel)
        blocks = list(self.timbral) + list(self.temporal)
        front = [block.forward_reference(x) if reference_order else block(x, self.int8) for block in blocks]
        return torch.cat(front, dim=1)  # (batch, 561, time)

    def from_frontend(self, front: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mid-end and back-end outputs from the front-end's feature maps."""
        mid1 = self.midend[0](front)
        mid2 = self.midend[1](mid1) + mid1
        mid3 = self.midend[2](mid2) + mid2
        stacked = torch.cat([front, mid1, mid2, mid3], dim=1)  # (batch, 753, time)

        max_pool = stacked.amax(dim=2)
        mean_pool = stacked.mean(dim=2)
        # The reference flattens (channel, [max, mean]) pairs, so they interleave.
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        logits = self.classifier(penultimate)
        return {
            "logits": logits,
            "tags": torch.sigmoid(logits),
            "penultimate": penultimate,
            "mean_pool": mean_pool,
            "max_pool": max_pool,
        }

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Tag probabilities, (batch, num_classes)."""
        return self.features(patches)["tags"]


def weights_dir(name: str) -> Path:
    """Folder of the pretrained checkpoint ``name`` inside the installed musicnn wheel."""
    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained model {name!r}; choose one of {', '.join(PRETRAINED)}")
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise MusicnnWeightsMissing(
            f"the musicnn weights are not installed; run: {WHEEL_INSTALL} "
            "(--no-deps matters: its declared TensorFlow and old numpy are not needed)"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / name
    if not (folder / ".index").is_file():
        raise MusicnnWeightsMissing(f"{folder} holds no checkpoint; reinstall with: {WHEEL_INSTALL}")
    return folder


def _set_bn(bn: nn.Module, tf: dict[str, np.ndarray], name: str) -> None:
    bn.weight.data = torch.from_numpy(tf[f"{name}/gamma"])
    bn.bias.data = torch.from_numpy(tf[f"{name}/beta"])
    bn.running_mean.data = torch.from_numpy(tf[f"{name}/moving_mean"])
    bn.running_var.data = torch.from_numpy(tf[f"{name}/moving_variance"])


def _conv2d_weight(kernel: np.ndarray) -> torch.Tensor:
    # TF: (height, width, in, out) → torch: (out, in, height, width)
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def _conv1d_weight(kernel: np.ndarray) -> torch.Tensor:
    # The mid-end's TF kernel (7, channels, 1, out) spans all channels: a 1-D conv.
    return torch.from_numpy(np.ascontiguousarray(kernel[:, :, 0, :].transpose(2, 1, 0)))


def load_pretrained(name: str = "MSD_musicnn") -> Musicnn:
    """musicnn with the published weights ``name`` (MSD_musicnn or MTT_musicnn), in eval mode."""
    tf = read_checkpoint(str(weights_dir(name)) + "/")
    model = Musicnn()
    # TF named layers by creation order; this is the order of build_musicnn.
    convs = list(model.timbral) + list(model.temporal)
    _set_bn(model.input_bn, tf, "batch_normalization")
    for i, block in enumerate(convs):
        block.conv.weight.data = _conv2d_weight(tf[f"conv2d_{i}/kernel" if i else "conv2d/kernel"])
        block.conv.bias.data = torch.from_numpy(tf[f"conv2d_{i}/bias" if i else "conv2d/bias"])
        _set_bn(block.bn, tf, f"batch_normalization_{i + 1}")
    for j, block in enumerate(model.midend):
        i = len(convs) + j
        block.conv.weight.data = _conv1d_weight(tf[f"conv2d_{i}/kernel"])
        block.conv.bias.data = torch.from_numpy(tf[f"conv2d_{i}/bias"])
        _set_bn(block.bn, tf, f"batch_normalization_{i + 1}")
    _set_bn(model.pool_bn, tf, "batch_normalization_9")
    model.dense.weight.data = torch.from_numpy(tf["dense/kernel"].T.copy())
    model.dense.bias.data = torch.from_numpy(tf["dense/bias"])
    _set_bn(model.dense_bn, tf, "batch_normalization_10")
    model.classifier.weight.data = torch.from_numpy(tf["dense_1/kernel"].T.copy())
    model.classifier.bias.data = torch.from_numpy(tf["dense_1/bias"])
    return model.eval()
