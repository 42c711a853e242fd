"""genre-train: train, evaluate, tune and compare genre models on your own labelled audio.

    genre-train fit --data DIR|INDEX.csv --out RUN_DIR [--config FILE.yaml] [--set key=value ...] [--resume]
    genre-train evaluate --model CKPT --data DIR|INDEX.csv [--list IDS.txt] [--out DIR]
    genre-train tune --data DIR|INDEX.csv --out STUDY_DIR [--config FILE.yaml] [--set ...] --trials N
    genre-train baseline --data DIR|INDEX.csv --out DIR [--train-list IDS.txt --eval-list IDS.txt]
    genre-train embed --data DIR|INDEX.csv --out FILE.npz [--layer penultimate|pooled|tags]

DATA is a folder with one sub-folder of audio per label, or a CSV with columns path,label
(labels separated by ";" for multi-label). Deploy a trained model with MODEL_PATH=RUN_DIR/model.pt.

Audio is decoded with the service's settings (MAX_AUDIO_SECONDS, MIN_AUDIO_SECONDS, FFMPEG_BIN,
DECODE_TIMEOUT_S), and evaluation runs the model as the service would (DEVICE, PRECISION,
BATCH_SIZE, TORCH_THREADS): read from the environment once, here.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.service.settings import Settings


def _data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="folder of label folders, or a path,label CSV")
    parser.add_argument("--cache-dir", type=Path, help="decoded patches are cached here (default: beside the output)")


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file of config keys (see training/config.py)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key; repeatable")


def _classifier_options(settings: Settings) -> dict:
    """``GenreClassifier``'s arguments besides the model: the service's device and arithmetic."""
    return {key: value for key, value in settings.model_options.items() if key != "model_path"}


def _fit(args, settings: Settings) -> None:
    from training.config import load_config
    from training.data import build_index
    from training.evaluate import evaluate
    from training.fit import fit

    config_file = args.config
    if args.resume and not config_file and (args.out / "config.yaml").is_file():
        config_file = args.out / "config.yaml"  # resume with the run's own configuration
    config = load_config(config_file, args.overrides)
    if args.cache_dir:
        config.cache_dir = str(args.cache_dir)
    model = fit(config, args.data, args.out, resume=args.resume, decode_options=settings.decode_options)
    # Report on the holdout: the tracks fit kept aside, through the service's own path.
    holdout = set(json.loads((args.out / "split.json").read_text())["holdout_paths"])
    tracks = [t for t in build_index(args.data) if str(t.path) in holdout]
    evaluate(model, tracks, args.out, config.cache_dir or args.out / "cache",
             decode_options=settings.decode_options, classifier_options=_classifier_options(settings))


def _evaluate(args, settings: Settings) -> None:
    from training.data import build_index, read_ids, select_ids
    from training.evaluate import evaluate

    tracks = build_index(args.data)
    if args.list:
        tracks = select_ids(tracks, read_ids(args.list), args.list)
    out = args.out or args.model.parent / f"evaluation-{args.list.stem if args.list else args.data.stem}"
    evaluate(args.model, tracks, out, args.cache_dir or out / "cache",
             decode_options=settings.decode_options, classifier_options=_classifier_options(settings))


def _tune(args, settings: Settings) -> None:
    from training.config import load_config
    from training.tune import tune

    config = load_config(args.config, args.overrides)
    if args.cache_dir:
        config.cache_dir = str(args.cache_dir)
    tune(config, args.data, args.out, args.trials, decode_options=settings.decode_options)


def _baseline(args, settings: Settings) -> None:
    from training.baseline import baseline
    from training.data import build_index, read_ids, select_ids, stratified_split

    tracks = build_index(args.data)
    test = select_ids(tracks, read_ids(args.eval_list), args.eval_list) if args.eval_list else []
    if args.train_list:
        train = select_ids(tracks, read_ids(args.train_list), args.train_list)
    else:  # everything not evaluated on
        train = [t for t in tracks if t not in test]
    if set(test) & set(train):
        raise ValueError("the train and evaluation lists share tracks")
    if not args.eval_list:
        train, test = stratified_split(train, args.holdout, args.seed)
    baseline(train, test, args.out, args.cache_dir or args.out / "cache", args.classifier, args.seed,
             decode_options=settings.decode_options)


def _embed(args, settings: Settings) -> None:
    from training.embed import embed

    embed(args.data, args.out, args.cache_dir or args.out.parent / "cache", args.layer, args.backbone,
          decode_options=settings.decode_options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genre-train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser("fit", help="train a model; writes RUN_DIR/model.pt, a report and plots")
    _data_args(fit)
    fit.add_argument("--out", required=True, type=Path, help="run folder")
    _config_args(fit)
    fit.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    fit.set_defaults(run=_fit)

    evaluate = commands.add_parser("evaluate", help="scores, plots and calibration of a checkpoint")
    evaluate.add_argument("--model", required=True, type=Path, help="checkpoint (model.pt or the shipped head)")
    _data_args(evaluate)
    evaluate.add_argument("--list", type=Path, help="evaluate only the track ids in this file")
    evaluate.add_argument("--out", type=Path, help="report folder (default: beside the model)")
    evaluate.set_defaults(run=_evaluate)

    tune = commands.add_parser("tune", help="Bayesian hyper-parameter search with Optuna")
    _data_args(tune)
    tune.add_argument("--out", required=True, type=Path, help="study folder (study.db, trials, best_config.yaml)")
    _config_args(tune)
    tune.add_argument("--trials", type=int, default=20)
    tune.set_defaults(run=_tune)

    base = commands.add_parser("baseline", help="hand-crafted features with a random forest or logistic regression")
    _data_args(base)
    base.add_argument("--out", required=True, type=Path)
    base.add_argument("--train-list", type=Path, help="track ids to train on (default: all not in --eval-list)")
    base.add_argument("--eval-list", type=Path, help="track ids to score (default: a stratified holdout)")
    base.add_argument("--classifier", choices=("forest", "logistic"), default="forest")
    base.add_argument("--holdout", type=float, default=0.2, help="held-out share when no --eval-list")
    base.add_argument("--seed", type=int, default=0)
    base.set_defaults(run=_baseline)

    emb = commands.add_parser("embed", help="pretrained backbone embeddings of every audio file")
    _data_args(emb)
    emb.add_argument("--out", required=True, type=Path, help=".npz file to write")
    emb.add_argument("--layer", choices=("penultimate", "pooled", "tags"), default="penultimate")
    emb.add_argument("--backbone", choices=("MSD_musicnn", "MTT_musicnn"), default="MSD_musicnn")
    emb.set_defaults(run=_embed)

    args = parser.parse_args(argv)
    try:
        # The one read of the environment; a bad value (SettingsError, a ValueError) ends here as any other.
        settings = Settings.from_env()
        args.run(args, settings)
    except (ValueError, FileNotFoundError) as error:
        print(f"genre-train {args.command}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
