"""One training configuration: defaults here, then a YAML file, then ``--set key=value`` overrides.

Keys are flat (``lr: 0.001``, not nested sections) so every one can be set from the command line.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml


@dataclass
class Config:
    # --- model ---
    model: str = "head"  # head (frozen pretrained tagger) | finetune (musicnn mid/back-end) | cnn (from scratch)
    multi_label: bool = False  # sigmoid per label (several labels per track) instead of a softmax
    backbone: str = "MSD_musicnn"  # the pretrained tagger: tags in every result, input of head/finetune
    width: int = 32  # cnn: channels of the first stage (doubled at every later stage)
    depth: int = 4  # cnn: residual stages
    dropout: float = 0.3  # finetune/cnn: before the last linear layer
    # --- data and split ---
    train_list: str = ""  # file of track ids (file names without extension) to train on; others are left out
    holdout: float = 0.15  # share of the training tracks carved out (stratified, whole tracks) for early stopping
    seed: int = 0
    cache_dir: str = ""  # decoded log-mel patches and backbone outputs; "" = RUN_DIR/cache
    # --- optimisation ---
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2  # AdamW's decoupled weight decay
    grad_clip: float = 1.0  # largest gradient norm; 0 turns clipping off
    patience: int = 5  # epochs without a lower holdout loss before stopping
    mixup: float = 0.2  # Beta(a, a) mixing of pairs of segments and their targets; 0 turns it off
    time_masks: int = 2  # SpecAugment: masked time spans per segment
    time_mask_width: int = 24  # widest time span, in frames
    freq_masks: int = 2  # masked frequency bands (feature channels for finetune) per segment
    freq_mask_width: int = 12  # widest band
    amp: bool = True  # mixed precision; only ever used on CUDA
    # Serve the temperature fitted on the holdout. Off by default: on GTZAN it made calibration
    # on other artists worse for every model, as the holdout shares artists with training.
    calibrate: bool = False
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    def validate(self) -> None:
        from shared.engine.genre_model import KINDS

        if self.model not in KINDS:
            raise ValueError(f"model={self.model!r}: choose one of {', '.join(KINDS)}")
        if self.backbone != "MSD_musicnn":
            raise ValueError("backbone: only MSD_musicnn; the service names every result's tags by its 50 MSD tags")
        if not 0 < self.holdout < 1:
            raise ValueError("holdout must be between 0 and 1")
        if self.epochs < 1 or self.batch_size < 1 or self.width < 1 or self.depth < 1:
            raise ValueError("epochs, batch_size, width and depth must be at least 1")

    def arch(self) -> dict:
        """The model constructor's size arguments, as stored in the checkpoint."""
        if self.model == "cnn":
            return {"width": self.width, "depth": self.depth, "dropout": self.dropout}
        if self.model == "finetune":
            return {"dropout": self.dropout}
        return {"n_inputs": 50}

    def to_dict(self) -> dict:
        return asdict(self)


def _coerce(name: str, kind: type, value):
    if isinstance(value, str) and kind is not str:
        value = yaml.safe_load(value)  # "1e-3" → 0.001, "true" → True
    if kind is bool and not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a valid {kind.__name__}") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file's keys, then ``key=value`` overrides; unknown keys are errors."""
    values: dict = {}
    if path:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of key: value")
        values.update(loaded)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: use key=value")
        values[key.strip()] = value.strip()
    kinds = {f.name: type(f.default) for f in fields(Config)}
    unknown = set(values) - set(kinds)
    if unknown:
        raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}; known: {', '.join(kinds)}")
    config = Config(**{k: _coerce(k, kinds[k], v) for k, v in values.items()})
    config.validate()
    return config


def write_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
