"""Loading a trained run for sampling (generate.py, export.py).

    params, family, model = load_run("runs/digits", use_ema=True)
    scheduler = build_scheduler(params, "fast" | "ddpm" | "ddim", steps=None, eta=0.0)

The model gets the EMA weights of the latest checkpoint (or the raw weights with use_ema=False).
Every failure is a RunError with a one-line message naming the run or checkpoint.
"""
from __future__ import annotations

import os

import tensorflow as tf

from diffusion.ema import EMA
from diffusion.families import family_for
from diffusion.precision import apply_policy
from params import Params, ParamsError


class RunError(ValueError):
    """A run directory that cannot be used for sampling."""


def load_run(run_dir, use_ema: bool = True):
    run_dir = str(run_dir)
    if not os.path.isdir(run_dir):
        raise RunError(f"{run_dir}: no such run directory")
    try:
        params = Params.load(os.path.join(run_dir, "params.json"))
    except ParamsError as e:
        raise RunError(str(e)) from None
    latest = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    if latest is None:
        raise RunError(f"{run_dir}: no checkpoint yet (train it first)")
    apply_policy(params.train, "sampling")     # the run's precision, where it is native here
    try:
        family = family_for(params)
    except ValueError as e:                 # a mel-vae run: nothing to sample
        raise RunError(f"{run_dir}: {e}") from None
    model = family.build_model()
    ema = EMA(model, params.train.ema_decay)
    try:
        tf.train.Checkpoint(model=model, ema=ema).restore(latest).expect_partial() \
            .assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError) as e:
        raise RunError(f"{latest}: cannot restore into a {params.model} with the run's params "
                       f"({str(e).strip().splitlines()[0][:120]})") from None
    if use_ema:
        ema.copy_to(model)
    return params, family, model


def build_scheduler(params, sampler: str, steps=None, eta: float = 0.0):
    """The scheduler of a run by name (generate.py and export.py share it)."""
    from diffusion.samplers import AncestralScheduler, DDIMScheduler
    from diffusion.schedule import NoiseSchedule
    if sampler == "v":                     # v-diffusion families: σ linear from 1 to 0
        from diffusion.vsampler import VScheduler
        return VScheduler(steps or 50)
    schedule = NoiseSchedule.from_params(params)
    if sampler == "ddim":
        scheduler = DDIMScheduler(schedule, eta=eta)
        scheduler.set_timesteps(steps or min(50, schedule.num_steps))
        return scheduler
    if sampler not in ("fast", "ddpm"):
        raise ValueError(f"unknown sampler {sampler!r} (choose from fast, ddpm, ddim, v)")
    # DDPM of the mel family clamps x̂₀ (diffusers' DDPMScheduler, clip_sample), DiffWave x.
    scheduler = AncestralScheduler(schedule, clip="x0" if params.model == "mel-unet" else "x")
    if sampler == "fast":
        scheduler.set_timesteps("fast", params.diffusion.inference_betas)
    return scheduler
