"""Train a model on a directory of audio or a metadata.jsonl.

    python train.py --model diffwave --data dataset/digits --run runs/digits --preset tiny \
        [--set key=value ...] [--steps N] [--strategy auto|mirrored|multiworker|one_device]
    python train.py --model mel-vae --data dataset/chorales --run runs/vae --preset small
        # the KL autoencoder of latent mel diffusion (diffusion/families/mel/vae.py)

The run directory is self-describing: params.json (the validated hyperparameters), checkpoints/
and logs/ (TensorBoard). Re-running the same command resumes from the latest checkpoint;
SIGINT/SIGTERM write a checkpoint and exit 0.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from configs import PRESETS, get_preset  # noqa: E402
from data.mel_images import is_image_dataset  # noqa: E402
from data.pipeline import make_dataset, prepare  # noqa: E402
from data.sources import DataError  # noqa: E402
from params import NETWORKS, Params, ParamsError, apply_overrides, quiet_tensorflow  # noqa: E402

IMAGE_MODELS = ("mel-unet", "mel-vae")      # may train on a stored mel-image dataset


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, choices=sorted(NETWORKS),
                   help="model family (default: diffwave, or --init-from's)")
    p.add_argument("--data", required=True, help="audio directory (recursive) or metadata.jsonl")
    p.add_argument("--run", required=True, help="run directory (params.json, checkpoints, logs)")
    p.add_argument("--preset", default=None,
                   choices=sorted({name for family in PRESETS.values() for name in family}),
                   help="hyperparameter preset for a new run (default: base)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one hyperparameter, e.g. --set batch_size=8 (repeatable)")
    p.add_argument("--steps", type=int, default=None,
                   help="train until this many steps in total (default: train.max_steps)")
    p.add_argument("--strategy", default="auto",
                   choices=["auto", "mirrored", "multiworker", "one_device"])
    p.add_argument("--local-workers", type=int, default=0,
                   help="launch N worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy)")
    p.add_argument("--cpu-devices", type=int, default=1,
                   help="split the CPU into N logical devices (test MirroredStrategy on CPU)")
    p.add_argument("--prepare-only", action="store_true",
                   help="decode and cache the data, print a summary and one batch, then stop")
    p.add_argument("--init-from", default=None, metavar="RUN",
                   help="fine-tune: start a new run from RUN's weights and EMA, with RUN's "
                        "params unless --preset is given (fresh optimizer and step)")
    p.add_argument("--rebuild-cache", action="store_true", help="ignore an existing data cache")
    p.add_argument("--autoencoder", default=None,
                   help="--model diffgen: the DiffAE run whose latents it learns to generate")
    return p.parse_args(argv)


def resolve_params(args) -> Params:
    """New run: preset + overrides, saved. Existing run: its params.json, which must agree."""
    if args.autoencoder is not None:          # diffgen: the DiffAE run, kept in params.json
        from diffusion.families.text_to_audio.family import check_autoencoder_run
        if (args.model or "diffwave") != "diffgen":
            raise ParamsError(f"--autoencoder applies to --model diffgen, not {args.model}")
        check_autoencoder_run(args.autoencoder)
        args.overrides = [*args.overrides,
                          f"network.autoencoder={os.path.abspath(args.autoencoder)}"]
    requested = apply_overrides(base_params(args), args.overrides)
    path = os.path.join(args.run, "params.json")
    if requested.model == "diffgen" and not os.path.exists(path):
        from diffusion.families.text_to_audio.family import check_autoencoder_run
        check_autoencoder_run(requested.network.autoencoder)
    if requested.model == "mel-unet" and requested.network.vae_run and not os.path.exists(path):
        from diffusion.families.mel.vae import check_vae_run  # before params.json is written
        check_vae_run(requested.network.vae_run, requested)
    if not os.path.exists(path):
        check_init_from(args.init_from, requested)     # before the run directory is written
        try:
            requested.save(path)
        except OSError as e:
            raise ParamsError(f"{args.run}: cannot write the run directory ({e.strerror})") \
                from None
        return requested
    saved = Params.load(path)
    if args.preset is None:          # resuming: the run's own params, plus any overrides
        requested = apply_overrides(saved, args.overrides)
    new, old = requested.to_dict(), saved.to_dict()
    diffs = [f"{s}.{k}: {old[s][k]!r} → {new[s][k]!r}" for s in Params.SECTIONS
             for k in new[s] if new[s][k] != old[s][k]]
    changed = {k for k in new["train"] if new["train"][k] != old["train"][k]}
    if changed and changed <= RESUME_SETTINGS and \
            dataclasses.replace(requested, train=saved.train) == saved:
        requested.save(path)         # the same weights and optimizer: the run goes on with them
        print("params: " + "; ".join(diffs))
        return requested
    if requested != saved:
        if new["model"] != old["model"]:
            diffs.insert(0, f"model: {old['model']!r} → {new['model']!r}")
        raise ParamsError(f"{path} holds other params ({'; '.join(diffs[:3])}); "
                          f"use a new --run directory or the run's own settings")
    return saved


# train keys a run may change when it resumes: they change neither the checkpoint's variables
# nor the objective (bf16 computes in lower precision; weights and Adam's slots stay float32).
RESUME_SETTINGS = {"mixed_precision", "precision_fallback", "log_every", "checkpoint_every",
                   "keep_checkpoints", "audio_every", "max_steps"}


def base_params(args) -> Params:
    """The preset (default base), or with --init-from and no --preset the source run's params:
    fine-tuning a bundled model needs no other flag."""
    if args.init_from is None or args.preset is not None:
        return get_preset(args.preset or "base", args.model or "diffwave")
    source = os.path.join(args.init_from, "params.json")
    if not os.path.isfile(source):
        raise ParamsError(f"--init-from {args.init_from}: no params.json (not a run directory)")
    params = Params.load(source)
    if args.model not in (None, params.model):
        raise ParamsError(f"--init-from {args.init_from} is a {params.model} run, not "
                          f"{args.model}; drop --model or give --preset")
    return params


def check_labels(prepared, params):
    """Class-conditional training needs a label in [0, num_classes) on every clip."""
    from diffusion.families.registry import trainable_for
    if getattr(trainable_for(params), "conditioning", "none") != "class":
        return
    for source in prepared.report.sources:
        if not 0 <= source.label < params.network.num_classes:
            raise DataError(f"{source.path}: label {source.label} is not in [0, "
                            f"{params.network.num_classes}) (class-conditional model)")


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_tensorflow()
    if args.steps is not None and args.steps < 0:
        print(f"error: --steps must be >= 0, got {args.steps}", file=sys.stderr)
        return 2
    if args.local_workers > 1:
        from diffusion.training.launcher import launch
        argv = sys.argv[1:] if argv is None else list(argv)
        i = argv.index("--local-workers")
        worker_argv = argv[:i] + argv[i + 2:] + ["--strategy", "multiworker"]
        return launch([os.path.abspath(__file__), *worker_argv], args.local_workers)
    from diffusion.training.strategy import StrategyError, configure_cpu_devices, make_strategy
    try:
        configure_cpu_devices(args.cpu_devices)
        params = resolve_params(args)
        # MultiWorkerMirroredStrategy must exist before any other TF op runs.
        strategy = None if args.prepare_only else make_strategy(args.strategy)
        start = time.perf_counter()
        if params.model in IMAGE_MODELS and is_image_dataset(args.data):
            return train_on_images(args, params, strategy)
        prepared = prepare(args.data, params.data, rebuild=args.rebuild_cache)
        check_labels(prepared, params)
    except (ParamsError, DataError, StrategyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(prepared.report.summary())
    print(f"cache: {prepared.path} ({'reused' if prepared.from_cache else 'built'} in "
          f"{time.perf_counter() - start:.1f} s): {prepared.num_clips} clips, "
          f"{prepared.seconds:.1f} s at {params.data.sample_rate} Hz, {prepared.channels} ch")
    dataset = make_dataset(prepared, params.data, seed=params.train.seed)
    if args.prepare_only:
        audio = next(iter(dataset))["audio"].numpy()
        print(f"batch: audio {list(audio.shape)}, peak {abs(audio).max():.3f}, "
              f"rms {float((audio ** 2).mean() ** 0.5):.3f}")
        print(f"params: {os.path.join(args.run, 'params.json')}")
        return 0
    return run_training(args, params, strategy, dataset, prepared)


def train_on_images(args, params, strategy) -> int:
    """A stored mel-image dataset: checked against the run's Mel parameters, read as PNGs."""
    from data.mel import Mel
    from data.mel_images import image_dataset, read_rows
    expected = Mel.from_params(params).get_config()
    expected.pop("n_iter")
    try:
        dataset = image_dataset(args.data, expected, params.data.batch_size,
                                seed=params.train.seed)
        count = len(read_rows(args.data))
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"images: {args.data}: {count} stored spectrograms of {expected['y_res']}×"
          f"{expected['x_res']}")
    if args.prepare_only:
        return 0
    return run_training(args, params, strategy, dataset)


# network keys that do not change the weights: sampling settings, the noise prior, the kernels
SAME_WEIGHTS = ("cfg_drop", "guidance", "consistency", "consistency_steps", "refine_steps",
                "refine_rate", "prior", "prior_std_min", "prior_energy", "impl")


def check_init_from(other_run, params) -> None:
    """--init-from needs a run of the same model with the same network params."""
    if other_run is None:
        return
    path = os.path.join(other_run, "params.json")
    if not os.path.isfile(path):
        raise ParamsError(f"--init-from {other_run}: no params.json (not a run directory)")
    other = Params.load(path)
    if other.model != params.model:
        raise ParamsError(f"--init-from {other_run}: model {other.model!r} ≠ {params.model!r}")
    old, new = other.to_dict()["network"], params.to_dict()["network"]
    diffs = [f"network.{k}: {old.get(k)!r} vs {new[k]!r}" for k in new
             if old.get(k) != new[k] and k not in SAME_WEIGHTS]
    if diffs:
        raise ParamsError(f"--init-from {other_run}: network params differ "
                          f"({'; '.join(diffs[:3])})")


def run_training(args, params, strategy, dataset, prepared=None) -> int:
    from diffusion.families.registry import trainable_for
    from diffusion.training.engine import Trainer, TrainError
    family = trainable_for(params)
    until = params.train.max_steps if args.steps is None else args.steps
    if family.single_device and (args.init_from or args.strategy in ("mirrored", "multiworker")):
        print(f"error: {params.model} runs train on one device from their own start "
              f"(no --init-from; --strategy auto or one_device)", file=sys.stderr)
        return 2
    try:                # e.g. diffgen: its frozen autoencoder and cached text states
        line = family.prepare_training(prepared)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if line:
        print(line)
    try:
        check_init_from(args.init_from, params)
        trainer = Trainer(family, params, strategy, args.run, dataset)
        resumed = trainer.restore()
        if args.init_from and not resumed:
            print(f"fine-tuning from {trainer.init_from(args.init_from)}")
        model = trainer.model
        print(f"model: {params.model}, {model.count_params():,} parameters, "
              f"{strategy.num_replicas_in_sync} replica(s) ({type(strategy).__name__}); "
              + (f"resumed at step {resumed}" if resumed else "new run"))
        status = trainer.train(until, sample_fn=_audio_sampler(args.run, params, family,
                                                                  model))
    except (TrainError, ValueError) as e:             # ValueError: e.g. network.vae_run
        print(f"\nerror: {e}", file=sys.stderr)
        return 2
    print(f"{status}: step {trainer.step}; checkpoints in {trainer.manager.directory}; "
          f"TensorBoard: tensorboard --logdir {os.path.join(args.run, 'logs')}")
    if family.next_step(args.run):
        print(family.next_step(args.run))
    return 0


def _audio_sampler(run, params, family, model):
    """TensorBoard's two one-second samples (labels 0 and 1 of a class-conditional run) with
    the family's default sampler, by a Pipeline around the model being trained (the engine
    swaps its EMA weights in around each call; the compiled step is traced once)."""
    if family.conditioning == "mel" or not family.tensorboard_samples:
        return None
    from diffusion import Pipeline
    pipe = Pipeline.from_loaded(run, params, family, model)
    label = {"label": [0, 1]} if pipe.accepts.num_classes else {}

    def sampler(trained):
        current = pipe if trained is pipe.model else \
            Pipeline.from_loaded(run, params, family, trained)
        return current(num=2, seconds=1.0, seed=0, **label).audio[..., None]
    return sampler


if __name__ == "__main__":
    sys.exit(main())
