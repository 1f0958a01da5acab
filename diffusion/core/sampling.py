"""Sampling with a scheduler (diffusion/core/schedulers.py): the backward process as a loop.

    x = sample(denoise, scheduler, shape=[4, 16000, 1], seed=0)        # x_T → x₀
    x_T = encode(denoise, ddim, x0)                                      # DDIM inversion
    denoise = chunked(denoise, chunk=64000, halo=receptive_field // 2)   # long clips, exact

`denoise(x_t, t [N]) → ε̂ (or v̂)` is the network with its conditioning bound (a family's
`denoiser`). The noise is stateless, keyed by (seed, inference index), so a sample is a
function of its seed. `prior_std` (PriorGrad, Lee et al. 2022): the prior is N(0, Σ) with
Σ^½ = prior_std (broadcast against x), so x_T and every step's z are drawn from it.

Two loops over one step's maths: `backward` (one tf.while_loop: SavedModels, and every call
without per-step progress) and `sample`'s Python loop of one traced step each (progress
callbacks, return_sequence, in/out-painting). Change both together; tests/test_samplers.py and
tests/test_export.py check they agree.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


def step_noise(shape, seed, n):
    """z for inference index n: stateless, keyed (seed, n + 1); (seed, 0) is x_T's."""
    return tf.random.stateless_normal(shape, tf.stack([tf.cast(seed, tf.int32), n + 1]))


def initial_noise(shape, seed):
    return tf.random.stateless_normal(shape, tf.stack([tf.cast(seed, tf.int32), 0]))


def known_noise(shape, seed):
    """The fixed z that re-noises the known region of in/out-painting, keyed (seed, −1)."""
    return tf.random.stateless_normal(shape, tf.stack([tf.cast(seed, tf.int32), -1]))


def edge_mask(shape, axis: int, start: int, end: int):
    """1 on the first `start` and last `end` positions along `axis` of `shape`, else 0, shaped to
    broadcast against x (the in/out-painting mask: keep the beginning and/or the end)."""
    length = int(shape[axis])
    start, end = max(0, min(int(start), length)), max(0, min(int(end), length))
    line = np.zeros(length, np.float32)
    line[:start] = 1.0
    if end:
        line[length - end:] = 1.0
    view = [1] * len(shape)
    view[axis] = length
    return line.reshape(view)


def slerp(x0, x1, alpha: float):
    """Spherical interpolation of two noise tensors (flattened per whole tensor, as diffusers'
    AudioDiffusionPipeline.slerp): θ = arccos(x₀·x₁/‖x₀‖‖x₁‖),
    sin((1−α)θ)/sin θ · x₀ + sin(αθ)/sin θ · x₁; linear when θ ≈ 0. Keeps Gaussian norms."""
    a, b = np.asarray(x0, np.float64), np.asarray(x1, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"slerp: shapes differ, {a.shape} vs {b.shape}")
    cos = np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b))
    theta = np.arccos(np.clip(cos, -1.0, 1.0))
    if theta < 1e-6:
        return ((1 - alpha) * a + alpha * b).astype(np.float32)
    return ((np.sin((1 - alpha) * theta) * a + np.sin(alpha * theta) * b) /
            np.sin(theta)).astype(np.float32)


def traced_step(denoiser, scheduler):
    """A reusable compiled step: step(x, n, seed, cond) → x at index n−1, with the network
    `denoiser(cond)` (cond a dict of tensors, an argument, so new labels or texts do not
    retrace). A caller that keeps it (Family.sample) traces once per process, not per call."""
    @tf.function(reduce_retracing=True)
    def step(x, n, seed, cond, prior_std):
        t = tf.fill(tf.shape(x)[:1], scheduler.model_steps[n])
        z = prior_std * step_noise(tf.shape(x), seed, n)                  # z ~ N(0, Σ)
        return scheduler.step(denoiser(cond)(x, t), n, x, z)
    return step


def backward(denoise, scheduler, x, start, seed, prior_std=1.0, spec=None):
    """x at inference index `start` → x₀, in one tf.while_loop (graph mode): index n takes
    x_n to x_{n−1} with noise z ~ N(0, Σ) keyed by (seed, n), as `sample`'s loop does. `spec`:
    the static shape x keeps (None = x's own)."""
    spec = x.shape if spec is None else tf.TensorShape(spec)
    shape = tf.shape(x)

    def body(n, x):
        t = tf.fill(shape[:1], scheduler.model_steps[n])
        x = scheduler.step(denoise(x, t), n, x, prior_std * step_noise(shape, seed, n))
        return n - 1, tf.ensure_shape(x, spec)

    # parallel_iterations=1: with TF's default (10) the steps' x-independent work (the mel
    # conditioner, the noise) runs up to 10 indices ahead, at 5× the memory and slower here.
    _, x = tf.while_loop(lambda n, _: n >= 0, body, (tf.cast(start, tf.int32), x),
                         shape_invariants=(tf.TensorShape([]), spec), parallel_iterations=1)
    return x


def traced_loop(denoiser, scheduler):
    """The whole backward process as one reusable compiled call: loop(x, start, seed, cond,
    prior_std) → x₀, with the network `denoiser(cond)` (cond an argument, as in traced_step)."""
    @tf.function(reduce_retracing=True)
    def loop(x, start, seed, cond, prior_std):
        return backward(denoiser(cond), scheduler, x, start, seed, prior_std)
    return loop


def sample(denoise, scheduler, shape, seed: int = 0, progress=None, init=None,
           strength: float = 1.0, noise=None, return_sequence: bool = False, known=None,
           step=None, prior_std=None, loop=None):
    """Runs the backward process, one compiled step per inference step (a single trace).

    From pure noise x_T (drawn from `seed`, or `noise` — e.g. a DDIM encoding), or
    (audio-to-audio / SDEdit) from `init` noised to the index that `strength` picks.
    `known = (x_known, mask)` (in/out-painting, any family): where mask is 1, x is overwritten
    after every step with x_known re-noised to the level just reached (clean after the last),
    with the fixed noise z_known of `seed`; mask broadcasts against x.
    `denoise(x, t [B]) → ε̂`; `progress(i, total)` after each step. Without progress, known and
    return_sequence the loop runs in the graph (`backward`): `loop`, a `traced_loop(...)` and its
    cond, (loop, cond), is used instead of tracing a new one; with them, one compiled step per
    index: `step`, (a `traced_step(...)`, cond), likewise (not with `known`). `prior_std`: Σ^½ of a data-dependent prior (PriorGrad), else N(0, I).
    Returns x₀, or with return_sequence the list [x_start, …, x₀]. Reproducible per seed.
    """
    shape = tf.constant(shape, tf.int32)
    std = tf.constant(1.0) if prior_std is None else tf.convert_to_tensor(prior_std, tf.float32)
    if known is not None:
        x_known = tf.convert_to_tensor(known[0], tf.float32)
        mask = tf.cast(tf.convert_to_tensor(known[1]), tf.float32)
        z_known = known_noise(shape, seed)

    def keep_known(x, n):
        """x at index n (n = −1: x₀) with the known region at the same noise level."""
        if known is None:
            return x
        renoised = tf.where(n >= 0, scheduler.add_noise(x_known, z_known, tf.maximum(n, 0)),
                            x_known)
        return mask * renoised + (1.0 - mask) * x

    @tf.function(reduce_retracing=True)
    def one_step(x, n):
        t = tf.fill(shape[:1], scheduler.model_steps[n])
        x = scheduler.step(denoise(x, t), n, x, std * step_noise(shape, seed, n))
        return keep_known(x, n - 1)

    if step is not None and known is None:
        traced, cond = step
        seed_t = tf.constant(seed, tf.int32)
        one_step = lambda x, n: traced(x, n, seed_t, cond, std)  # noqa: E731

    start = scheduler.num_inference_steps - 1
    x = std * initial_noise(shape, seed) if noise is None else tf.convert_to_tensor(noise,
                                                                                   tf.float32)
    if init is not None:
        start = scheduler.start_index(strength)
        x = scheduler.add_noise(tf.convert_to_tensor(init, tf.float32), x, start)
    x = keep_known(x, tf.constant(start))
    if progress is None and known is None and not return_sequence:
        traced, cond = loop if loop is not None else (
            traced_loop(lambda _: denoise, scheduler), {})
        return traced(x, tf.constant(start, tf.int32), tf.constant(seed, tf.int32), cond, std)
    sequence = [x] if return_sequence else None
    indices = [n for n in scheduler.timesteps if n <= start]
    for i, n in enumerate(indices):
        x = one_step(x, tf.constant(n, tf.int32))
        if return_sequence:
            sequence.append(x)
        if progress is not None:
            progress(i + 1, len(indices))
    return sequence if return_sequence else x


def encode(denoise, scheduler, x0, progress=None):
    """DDIM inversion (η = 0): audio x₀ → the noise x_T that DDIM decodes back to ≈ x₀."""
    x = tf.convert_to_tensor(x0, tf.float32)

    @tf.function(reduce_retracing=True)
    def one_step(x, n):
        below = tf.maximum(n - 1, 0)                        # ε̂ at the level x is at now
        t = tf.fill(tf.shape(x)[:1], scheduler.model_steps[below])
        return scheduler.invert_step(denoise(x, t), n, x)

    for n in range(scheduler.num_inference_steps):
        x = one_step(x, tf.constant(n, tf.int32))
        if progress is not None:
            progress(n + 1, scheduler.num_inference_steps)
    return x


def chunked(denoise, chunk: int, halo: int):
    """denoise over overlapping windows: the same ε̂ as the whole-length pass, in bounded memory.

    Each window is a chunk plus `halo` samples each side (clipped at the signal's ends, where
    the network's own zero padding applies, as in the whole pass); only the chunk is kept.
    Exact when halo ≥ (receptive_field − 1)/2. Windows run one at a time (parallel_iterations
    = 1) so only one window's activations are alive.
    """
    def run(x, t):
        length = tf.shape(x)[1]
        count = (length + chunk - 1) // chunk
        parts = tf.TensorArray(x.dtype, size=count, infer_shape=False)

        def body(i, parts):
            start = i * chunk
            end = tf.minimum(start + chunk, length)
            low, high = tf.maximum(start - halo, 0), tf.minimum(end + halo, length)
            eps = denoise(x[:, low:high], t)[:, start - low:end - low]
            return i + 1, parts.write(i, tf.transpose(eps, [1, 0, 2]))   # time-major pieces

        _, parts = tf.while_loop(lambda i, _: i < count, body, (0, parts), parallel_iterations=1)
        return tf.transpose(parts.concat(), [1, 0, 2])
    return run


def graph_sample(denoise, scheduler, shape, seed, spec, prior_std=1.0):
    """x_T → x₀ in one tf.while_loop for a SavedModel: `shape` is the dynamic shape tensor,
    `spec` the static shape x keeps (None = any); the noise and `prior_std` as in `sample`."""
    x_T = tf.ensure_shape(prior_std * initial_noise(shape, seed), tf.TensorShape(spec))
    return backward(denoise, scheduler, x_T, scheduler.num_inference_steps - 1, seed,
                    prior_std, spec)
