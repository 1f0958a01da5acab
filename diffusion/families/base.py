"""The Family interface: what a model family is, and everything the CLIs and the engine ask of it.

A family is a network, an objective and a scheduler (after audio-diffusion-pytorch's
`DiffusionModel`), with two verbs:

    per_example, metrics = family.loss(objective, model, x0, cond, draws, seed)   # a step
    x = family.sample(model, scheduler, shape, cond, seed, **options)    # x_T → x₀

and the hooks below, each with a default here, so a new family overrides only what differs:

    build_model()                     the Keras network, built
    split_batch(batch)                a data batch → (x₀, conditioning dict)
    draw(objective, shape, seed)      a step's random draws for the global batch: t, ε and
                                      training_draws(batch, seed) (CFG's keep mask)
    prepare_training(prepared)        one-off work before training (a line to print, or None)
    model_inputs(x_t, t, cond)        the network's input dict;  denoiser(model, cond) binds it
    load_frozen()                     load what sampling needs besides the model (a DiffAE)
    class_condition(labels)           the conditioning of labelled clips (text_condition,
                                      latent_condition: the text and DiffAE families')
    sample_shape(num, seconds, cond)  x_T's shape
    to_audio(x, request)              x₀ → (audio [N, T], images or None); length, seed and
                                      decode steps come in `request`, never from hidden state
    from_audio(audio, num)            audio → x₀ (audio-to-audio)
    export_module(model, options)     a tf.Module for export.py (requests.ExportOptions)
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from diffusion.core.sampling import sample, traced_loop, traced_step


def _scheduler_key(scheduler) -> tuple:
    """What a traced step depends on: the scheduler's kind and its constants."""
    consts = tuple(np.asarray(v).tobytes() for k, v in sorted(vars(scheduler).items())
                   if isinstance(v, (tf.Tensor, np.ndarray)))
    scalars = tuple((k, v) for k, v in sorted(vars(scheduler).items())
                    if isinstance(v, (int, float, str, bool)))
    return type(scheduler).__name__, consts, scalars


@dataclasses.dataclass(frozen=True)
class Request:
    """What a caller asks of to_audio: clips of `seconds`, the decoder's seed and steps."""
    num: int = 1
    seconds: float = 1.0
    seed: int = 0
    decode_steps: int = 50

    def length(self, rate: int) -> int:
        return max(1, int(round(self.seconds * rate)))


class Family:
    objective = "epsilon"               # "epsilon" (DDPM ε-prediction) or "v" (v-diffusion)
    default_sampler = "ddim"
    ddpm_clip = "x"                     # the ancestral sampler clamps x ("x") or x̂₀ ("x0")
    samplers = ("fast", "ddpm", "ddim")  # the scheduler names generate.py accepts
    conditioning = "none"
    tensorboard_samples = True          # the engine logs two samples now and then
    uses_ema = True                     # the engine keeps EMA weights (checkpoint: model, ema,
                                        # optimizer, loss scale, data); False: model, optimizer,
                                        # data (a VAE)
    reconstructs = False                # generate.py: --from-audio is reconstructed (DiffAE)
    makes_images = False                # to_audio also returns images (a vocoder can invert)

    # --- training --------------------------------------------------------------------------
    def training_draws(self, batch: int, seed) -> dict:
        return {}

    single_device = False               # True: no MirroredStrategy / multi-worker, no --init-from

    def prepare_training(self, prepared):
        return None

    def next_step(self, run_dir):
        """A hint train.py prints after training (or None)."""
        return None

    def draw(self, objective, shape, seed) -> dict:
        """The step's draws for the whole global batch `shape` (the engine slices out each
        replica's and micro-batch's rows): t (or σ), ε and the family's own."""
        t, noise = objective.draw(shape, seed)
        return {"t": t, "noise": noise, **self.training_draws(shape[0], seed)}

    def loss(self, objective, model, x0, cond, draws, seed):
        """(per-example loss [B], {name: scalar} to log) of one micro-batch; the engine
        averages the loss over the global batch."""
        cond = {**cond, **{k: v for k, v in draws.items() if k not in ("t", "noise")}}
        denoise = self.denoiser(model, cond, training=True)
        return objective.loss(denoise, x0, draws["t"], draws["noise"]), {}

    # --- the network ---------------------------------------------------------------------
    def model_inputs(self, x_t, t, cond):
        raise NotImplementedError

    def denoiser(self, model, cond, training=False):
        """denoise(x_t, t) → the network's prediction (ε̂ or v̂), with `cond` bound."""
        return lambda x_t, t: model(self.model_inputs(x_t, t, cond), training=training)

    # --- sampling --------------------------------------------------------------------------
    def sample(self, model, scheduler, shape, cond=None, seed: int = 0, denoise=None, **options):
        """x_T → x₀ with `scheduler` (diffusion/core/sampling.py's `sample`; `options`: progress,
        init, strength, noise, known). `denoise` replaces the bound network (e.g. chunked).
        The compiled loop (and the step of a per-step call: progress, in/out-painting) is kept
        per (model, scheduler config, rank of x), so repeated calls in one process (evaluation
        batches, TensorBoard samples) do not trace again."""
        return self.sample_with(lambda c: self.denoiser(model, c), (id(model),), scheduler,
                                shape, cond, seed, denoise, **options)

    def sample_with(self, bind, key, scheduler, shape, cond=None, seed: int = 0, denoise=None,
                    **options):
        """`sample` with `bind(cond)` → denoise(x, t) as the network, its compiled step kept
        under `key` (what else bind depends on: the model, a family's sampling settings)."""
        cond = cond or {}
        if denoise is not None or options.get("known") is not None:
            return sample(denoise or bind(cond), scheduler, shape, seed, **options)
        key = (*key, _scheduler_key(scheduler), len(shape))
        cache = self.__dict__.setdefault("_steps", {})
        if key not in cache:        # bind keeps the model alive
            cache[key] = (bind, traced_step(bind, scheduler), traced_loop(bind, scheduler))
        _, step, loop = cache[key]
        return sample(bind(cond), scheduler, shape, seed, step=(step, cond), loop=(loop, cond),
                      **options)

    def load_frozen(self) -> None:
        """Loads and checks what sampling needs besides the model (default: nothing)."""

    def class_condition(self, labels) -> dict:
        """The conditioning of a class-conditional run for int labels [N]."""
        return {"label": tf.convert_to_tensor(labels, tf.int32)}

    def sample_shape(self, num: int, seconds: float, cond=None):
        raise NotImplementedError

    def to_audio(self, x, request: Request):
        raise NotImplementedError

    def export_module(self, model, options):
        """(a tf.Module with `save(directory)`, a line describing it) for export.py's
        `options` (diffusion.requests.ExportOptions)."""
        raise ValueError(f"SavedModel export of {self.params.model} runs is not in this "
                         f"version (DiffWave, mel-unet and diffgen runs)")

    def scheduler(self, sampler: str, steps=None, eta: float = 0.0):
        """The run's scheduler by name (fast, ddpm, ddim; v for v families)."""
        from diffusion.core.schedulers import build_scheduler
        return build_scheduler(self.params, sampler, steps, eta, clip=self.ddpm_clip)

    def export_scheduler(self, options, sampler=None):
        """The scheduler of an ε family's export (options.sampler, steps ≤ T, eta)."""
        total = self.params.diffusion.num_steps
        if options.steps is not None and not 1 <= options.steps <= total:
            raise ValueError(f"steps: must be in 1..{total}, got {options.steps}")
        return self.scheduler(sampler or options.sampler, options.steps, options.eta)


@dataclasses.dataclass
class WaveformFamily(Family):
    params: object

    time_axis = 1                       # x [N, T, 1]: in/out-painting masks run along T

    def model_inputs(self, x_t, t, cond):
        return {"audio": x_t, "step": tf.cast(t, tf.float32), **cond}

    def sample_shape(self, num: int, seconds: float, cond=None):
        return [num, max(1, int(round(seconds * self.params.data.sample_rate))), 1]

    def frames_per_second(self) -> float:
        return float(self.params.data.sample_rate)

    def to_audio(self, x, request: Request = Request()):
        """A sample [N, T, 1] → (audio [N, T] float32, images or None)."""
        return np.asarray(x)[..., 0], None

    def from_audio(self, audio, num: int):
        """Mono audio [T] at the run's rate → the x₀ of audio-to-audio, [num, T, 1]."""
        return np.tile(np.asarray(audio, np.float32)[None, :, None], [num, 1, 1])
