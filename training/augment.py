"""Training-time augmentation: SpecAugment masks and mixup."""
from __future__ import annotations

import torch


def spec_augment(x: torch.Tensor, time_masks: int, time_width: int, freq_masks: int, freq_width: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """A copy of ``x`` (batch, time, features) with random time spans and feature bands masked.

    Masked cells take the segment's mean, so a mask hides information without adding an
    unusual value (zero is not silence for every input, e.g. standardised features).
    """
    x = x.clone()
    batch, frames, bands = x.shape
    fill = x.mean(dim=(1, 2))
    for axis, count, widest, size in ((1, time_masks, time_width, frames), (2, freq_masks, freq_width, bands)):
        for _ in range(count):
            width = torch.randint(0, min(widest, size) + 1, (batch,), generator=generator)
            start = (torch.rand(batch, generator=generator) * (size - width + 1)).long()
            index = torch.arange(size)
            mask = (index >= start[:, None]) & (index < (start + width)[:, None])  # (batch, size)
            mask = mask[:, :, None] if axis == 1 else mask[:, None, :]
            x = torch.where(mask, fill[:, None, None], x)
    return x


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float,
          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each example blended with another of the batch, targets blended alike (Zhang et al., 2018)."""
    if alpha <= 0 or len(x) < 2:
        return x, y
    lam = torch.distributions.Beta(alpha, alpha).sample((len(x),)).to(x.device)
    lam = torch.maximum(lam, 1 - lam)  # the example itself stays the larger part
    partner = torch.randperm(len(x), generator=generator).to(x.device)
    shape = (-1,) + (1,) * (x.dim() - 1)
    return lam.view(shape) * x + (1 - lam.view(shape)) * x[partner], lam[:, None] * y + (1 - lam[:, None]) * y[partner]
