"""genre-train fit: train a genre model on labelled audio and write a deployable checkpoint.

A run folder holds: ``config.yaml`` (the full configuration), ``split.json`` (which tracks
trained and which were held out), ``model.pt`` (the best checkpoint by holdout loss, loadable
by the service through MODEL_PATH), ``last.pt`` (the state to resume from), ``history.json``,
``tensorboard/``, and the holdout evaluation (``report.json`` and PNG plots).

Early stopping and temperature scaling (served only with ``calibrate``) use a holdout carved
from the training tracks only.
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from shared.engine.genre_model import build_model, probabilities, save_model
from shared.engine.head import tag_logits
from shared.engine.inference import resolve_device
from shared.engine.musicnn import load_pretrained
from training.augment import mixup, spec_augment
from training.config import Config, write_config
from training.data import (Track, build_index, label_names, load_frontend_maps, load_patches, read_ids,
                           select_ids, stratified_split, targets)

log = logging.getLogger(__name__)


def select_tracks(config: Config, data: str | Path) -> tuple[list[Track], list[str]]:
    """The tracks to train on (the train list's, when given) and their sorted labels."""
    tracks = build_index(data)
    if config.train_list:
        tracks = select_ids(tracks, read_ids(config.train_list), config.train_list)
    if not config.multi_label and any(len(t.labels) > 1 for t in tracks):
        raise ValueError("some tracks have several labels: set multi_label=true")
    return tracks, label_names(tracks)


@torch.no_grad()
def model_inputs(config: Config, tracks: list[Track], cache_dir: Path,
                 decode_options: dict) -> tuple[list[Track], list[np.ndarray]]:
    """Per track, what the model trains on: log-mel patches (cnn), front-end maps (finetune) or tags (head)."""
    patches = load_patches(tracks, cache_dir, decode_options)
    kept = [(t, p) for t, p in zip(tracks, patches) if p is not None]
    if not kept:
        raise ValueError(f"none of {len(tracks)} tracks could be decoded (see the warnings above)")
    tracks, patches = [t for t, _ in kept], [p for _, p in kept]
    if config.model == "cnn":
        return tracks, patches
    backbone = load_pretrained(config.backbone)
    maps = load_frontend_maps(tracks, patches, cache_dir, backbone, config.backbone)
    if config.model == "finetune":
        return tracks, maps
    return tracks, [backbone.from_frontend(torch.from_numpy(m).float())["tags"].numpy() for m in maps]


def stack(inputs: list[np.ndarray], y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Segments of all tracks as one batch: inputs, targets, and each segment's track index."""
    owner = np.concatenate([np.full(len(x), i) for i, x in enumerate(inputs)])
    return torch.from_numpy(np.concatenate(inputs)), torch.from_numpy(y[owner]), owner


def new_model(config: Config, labels: list[str], train_x: torch.Tensor) -> nn.Module:
    model = build_model(config.model, labels, config.multi_label, config.arch())
    if config.model == "head":
        # Standardise tag logits with training statistics, as the shipped head does.
        z = tag_logits(train_x.float())
        model.mean.copy_(z.mean(0))
        model.std.copy_(z.std(0).clamp_min(1e-3))
    elif config.model == "finetune":
        pretrained = load_pretrained(config.backbone)
        model.backbone.load_state_dict(pretrained.state_dict())
        # The front-end is frozen (its outputs are cached) and so is the unused tag layer.
        for part in (model.backbone.input_bn, model.backbone.timbral, model.backbone.temporal,
                     model.backbone.classifier):
            part.requires_grad_(False)
    return model


def forward(model: nn.Module, kind: str, x: torch.Tensor) -> torch.Tensor:
    return model.from_frontend(x) if kind == "finetune" else model(x)


def loss_fn(logits: torch.Tensor, y: torch.Tensor, multi_label: bool) -> torch.Tensor:
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, y)
    return -(y * F.log_softmax(logits, dim=1)).sum(1).mean()  # soft targets, for mixup


def augment(config: Config, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if config.model == "head":
        return x  # tags are not a spectrogram; mixup is their augmentation
    masks = (config.time_masks, config.time_mask_width, config.freq_masks, config.freq_mask_width, generator)
    if config.model == "finetune":  # front-end maps are (batch, channels, time)
        return spec_augment(x.transpose(1, 2), *masks).transpose(1, 2)
    return spec_augment(x, *masks)


@torch.no_grad()
def predict_logits(model: nn.Module, kind: str, x: torch.Tensor, device: torch.device, batch: int = 64) -> torch.Tensor:
    model.eval()
    return torch.cat([forward(model, kind, x[i:i + batch].to(device).float()).float().cpu()
                      for i in range(0, len(x), batch)])


def holdout_scores(logits: torch.Tensor, y: torch.Tensor, owner: np.ndarray, multi_label: bool,
                   temperature: float = 1.0) -> dict:
    """Segment loss and track top-1 (the mean of segment probabilities, as the service aggregates)."""
    probs = probabilities(logits, multi_label, temperature).numpy()
    tracks = np.unique(owner)
    track_probs = np.stack([probs[owner == t].mean(0) for t in tracks])
    track_y = np.stack([y.numpy()[owner == t][0] for t in tracks])
    hit = track_y[np.arange(len(tracks)), track_probs.argmax(1)] > 0
    return {"loss": float(loss_fn(logits / temperature, y, multi_label)), "top1": float(hit.mean())}


def track_loss(logits: torch.Tensor, y: torch.Tensor, owner: np.ndarray, multi_label: bool,
               temperature: torch.Tensor | float) -> torch.Tensor:
    """Loss of the track probabilities the service reports: the mean of tempered segment probabilities."""
    probs = probabilities(logits / temperature, multi_label)
    index = torch.from_numpy(owner).long()
    count = torch.bincount(index).clamp_min(1).unsqueeze(1).float()
    track_probs = torch.zeros(int(index.max()) + 1, probs.shape[1]).index_add(0, index, probs) / count
    track_y = torch.zeros_like(track_probs).index_copy(0, index, y)
    track_probs = track_probs.clamp(1e-6, 1 - 1e-6)
    if multi_label:
        return F.binary_cross_entropy(track_probs, track_y)
    return -(track_y * track_probs.log()).sum(1).mean()


def fit_temperature(logits: torch.Tensor, y: torch.Tensor, owner: np.ndarray, multi_label: bool) -> float:
    """The temperature that minimises the holdout's track-level loss (Guo et al., 2017, applied
    to the songs' mean probabilities, as served); 1 when no temperature does better than none."""
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = track_loss(logits, y, owner, multi_label, log_t.exp())
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().exp().clamp(0.05, 20))
    with torch.no_grad():
        better = track_loss(logits, y, owner, multi_label, temperature) < track_loss(logits, y, owner, multi_label, 1.0)
    return temperature if better else 1.0


def fit(config: Config, data: str | Path, out: str | Path, resume: bool = False, *, decode_options: dict) -> Path:
    """Train per ``config`` on ``data``; returns the path of the best checkpoint (``out/model.pt``).

    ``decode_options``: ``decode()``'s keyword arguments (the entry point's ``Settings.decode_options``),
    so training hears the audio exactly as the service it deploys to decodes it.
    """
    from torch.utils.tensorboard import SummaryWriter  # slow import; only needed here

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_config(config, out / "config.yaml")
    cache_dir = Path(config.cache_dir) if config.cache_dir else out / "cache"
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = resolve_device(config.device)
    use_amp = config.amp and device.type == "cuda"  # mixed precision only where it pays off and is safe

    tracks, labels = select_tracks(config, data)
    train_tracks, hold_tracks = stratified_split(tracks, config.holdout, config.seed)
    if not hold_tracks:
        raise ValueError("the holdout is empty: early stopping needs at least two tracks of some label")
    train_tracks, train_inputs = model_inputs(config, train_tracks, cache_dir, decode_options)
    hold_tracks, hold_inputs = model_inputs(config, hold_tracks, cache_dir, decode_options)
    split = {"data": str(data), "train": [t.id for t in train_tracks], "holdout": [t.id for t in hold_tracks],
             "train_paths": [str(t.path) for t in train_tracks], "holdout_paths": [str(t.path) for t in hold_tracks]}
    (out / "split.json").write_text(json.dumps(split, indent=1))
    train_x, train_y, _ = stack(train_inputs, targets(train_tracks, labels))
    hold_x, hold_y, hold_owner = stack(hold_inputs, targets(hold_tracks, labels))
    print(f"{len(labels)} labels, {len(train_tracks)} training tracks ({len(train_x)} segments), "
          f"{len(hold_tracks)} holdout tracks; model {config.model} on {device}")

    model = new_model(config, labels, train_x).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    # Closed-form cosine over config.epochs: a run resumed with more epochs picks up the
    # schedule at its epoch, instead of continuing from a rate already decayed to zero.
    def lr_factor(epoch: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * min(epoch, config.epochs) / config.epochs))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    state = {"epoch": 0, "best_loss": float("inf"), "bad_epochs": 0, "history": []}
    run = {"labels": labels, "kind": config.model, "arch": config.arch(), "split": split["train_paths"]}
    if resume and (out / "last.pt").is_file():
        # On the CPU: the saved random-number states must stay CPU tensors.
        saved = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
        different = [key for key in run if saved.get("run", {}).get(key) != run[key]]
        if different:
            raise ValueError(f"--resume continues the run in {out} only with the same data, labels, split and "
                             f"model; these differ: {', '.join(different)}")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        state = saved["state"]
        for group, base in zip(optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base * lr_factor(scheduler.last_epoch)  # the saved rate followed the old epoch count
        if config.epochs > saved.get("epochs", config.epochs):
            state["bad_epochs"] = 0  # more epochs were asked for: give them their patience again
        print(f"resuming after epoch {state['epoch']}")
    writer = SummaryWriter(str(out / "tensorboard"))
    metadata = {"data": str(data), "config": config.to_dict(), "train_tracks": len(train_tracks),
                "holdout_tracks": len(hold_tracks), "device": str(device)}
    started = time.perf_counter()

    epochs = tqdm(range(state["epoch"], config.epochs), desc="epochs", unit="epoch", initial=state["epoch"],
                  total=config.epochs)
    for epoch in epochs:
        model.train()
        if config.model == "finetune":
            model.backbone.eval()  # keep the pretrained batch-norm statistics; small batches would upset them
        order = torch.randperm(len(train_x), generator=generator)
        total, seen = 0.0, 0
        for first in tqdm(range(0, len(order), config.batch_size), desc=f"epoch {epoch + 1}", leave=False):
            index = order[first:first + config.batch_size]
            x = augment(config, train_x[index].float(), generator)
            x, y = mixup(x, train_y[index], config.mixup, generator)
            x, y = x.to(device), y.to(device)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                logits = forward(model, config.model, x)
            loss = loss_fn(logits.float(), y, config.multi_label)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(trainable, config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            total, seen = total + loss.item() * len(index), seen + len(index)
        lr = optimizer.param_groups[0]["lr"]  # the rate this epoch ran at
        scheduler.step()

        scores = holdout_scores(predict_logits(model, config.model, hold_x, device), hold_y, hold_owner,
                                config.multi_label)
        row = {"epoch": epoch + 1, "train_loss": total / seen, "holdout_loss": scores["loss"],
               "holdout_top1": scores["top1"], "lr": lr,
               "seconds": round(time.perf_counter() - started, 1)}
        state["history"].append(row)
        for key in ("train_loss", "holdout_loss", "holdout_top1", "lr"):
            writer.add_scalar(key, row[key], epoch + 1)
        epochs.set_postfix(train=f"{row['train_loss']:.3f}", holdout=f"{row['holdout_loss']:.3f}",
                           top1=f"{row['holdout_top1']:.2f}")
        state["epoch"] = epoch + 1
        if scores["loss"] < state["best_loss"]:
            state["best_loss"], state["bad_epochs"] = scores["loss"], 0
            save_model(model, out / "model.pt", config.model, config.arch(), config.backbone,
                       {**metadata, "best_epoch": epoch + 1, "holdout": scores, "history": state["history"]})
        else:
            state["bad_epochs"] += 1
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                    "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "state": state,
                    "run": run, "epochs": config.epochs},
                   out / "last.pt")
        if state["bad_epochs"] >= config.patience:
            print(f"early stop after epoch {epoch + 1}: no lower holdout loss for {config.patience} epochs")
            break
    writer.close()

    # Fit a temperature on the holdout; it is served only when calibrate is set (see config.py).
    from shared.engine.genre_model import load_model

    best, record = load_model(out / "model.pt")
    logits = predict_logits(best.to(device), config.model, hold_x, device)
    fitted = fit_temperature(logits, hold_y, hold_owner, config.multi_label)
    temperature = fitted if config.calibrate else 1.0
    metadata = {**record["metadata"], "history": state["history"], "labels": labels, "fitted_temperature": fitted,
                "holdout_calibrated": holdout_scores(logits, hold_y, hold_owner, config.multi_label, temperature),
                "train_seconds": round(time.perf_counter() - started, 1)}
    save_model(best, out / "model.pt", config.model, config.arch(), config.backbone, metadata, temperature)
    (out / "history.json").write_text(json.dumps(state["history"], indent=1))
    print(f"best epoch {metadata['best_epoch']}: holdout loss {metadata['holdout']['loss']:.3f}, "
          f"top-1 {metadata['holdout']['top1']:.1%}; temperature {temperature:.2f}; wrote {out / 'model.pt'}")
    return out / "model.pt"
