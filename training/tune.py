"""genre-train tune: Bayesian hyper-parameter search (Optuna's TPE) over ``fit`` runs.

Each trial is a full ``fit`` in ``OUT/trial_NNN`` scored by its best holdout loss (the holdout
is carved from the training tracks, so the reported validation set is never looked at). The
study lives in ``OUT/study.db`` (SQLite): running the command again continues it. The best
configuration is written to ``OUT/best_config.yaml``, ready for ``fit --config``.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import optuna

from shared.engine.genre_model import load_model
from training.config import Config, write_config
from training.fit import fit


def suggest(trial: optuna.Trial, model: str) -> dict:
    """The searched keys for one model kind; everything else stays as configured."""
    params = {
        "lr": trial.suggest_float("lr", 1e-4, 3e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-4, 1e-1, log=True),
        "mixup": trial.suggest_float("mixup", 0.0, 0.5),
    }
    if model != "head":
        params["dropout"] = trial.suggest_float("dropout", 0.0, 0.5)
    if model == "cnn":
        params["width"] = trial.suggest_categorical("width", [8, 16, 32])
        params["depth"] = trial.suggest_int("depth", 2, 4)
    return params


def tune(config: Config, data: str | Path, out: str | Path, trials: int, *, decode_options: dict) -> Config:
    """Run ``trials`` more trials; returns (and writes) the best configuration found so far.
    ``decode_options``: ``decode()``'s keyword arguments, for every trial's ``fit``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # Trials share one cache, so audio is decoded (and the backbone run) once for the study.
    cache = config.cache_dir or str(out / "cache")
    study = optuna.create_study(direction="minimize", study_name="genre-train",
                                storage=f"sqlite:///{out / 'study.db'}", load_if_exists=True,
                                sampler=optuna.samplers.TPESampler(seed=config.seed))

    def objective(trial: optuna.Trial) -> float:
        trial_config = replace(config, cache_dir=cache, **suggest(trial, config.model))
        model = fit(trial_config, data, out / f"trial_{trial.number:03d}", decode_options=decode_options)
        _, record = load_model(model)
        trial.set_user_attr("holdout_top1", record["metadata"]["holdout"]["top1"])
        return record["metadata"]["holdout"]["loss"]

    study.optimize(objective, n_trials=trials)
    best = replace(config, **study.best_params)
    write_config(best, out / "best_config.yaml")
    print(f"best of {len(study.trials)} trials: #{study.best_trial.number}, holdout loss {study.best_value:.4f}, "
          f"{study.best_params}; wrote {out / 'best_config.yaml'}")
    return best
