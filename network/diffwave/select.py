"""Which DiffWave implementation this process runs: chosen once, from what the machine can do.

    choose_impl("auto")   → "fused" where one tiny fused train step runs (CPU: oneDNN or Eigen),
                            else "reference"; on a GPU "reference" (cuDNN runs Keras' layers)
    choose_impl("fused" | "reference") → that one (fused is probed too: a clear error if it
                            cannot run here)

The choice is printed once per process, e.g. `DiffWave: fused (oneDNN)`.
"""
from __future__ import annotations

import tensorflow as tf

IMPLS = ("auto", "reference", "fused")
_probed: dict = {}        # "fused" → None (it runs) | the reason it does not
_announced: set = set()

# Errors of an op or kernel this build/CPU lacks (e.g. "Current CPU implementations do not yet
# support dilation rates larger than 1", a missing XLA CPU JIT).
_KERNEL_ERRORS = (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                  tf.errors.NotFoundError, tf.errors.InternalError, tf.errors.AbortedError)


class ImplError(ValueError):
    """network.impl names an implementation that cannot run here (the message says why)."""


def onednn_enabled() -> bool:
    """True when TF runs its CPU ops through oneDNN (TF_ENABLE_ONEDNN_OPTS, or TF's CPU default)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return False


def _probe_fused():
    """None if one fused layer (dilation 2) runs forward and backward here, else the reason."""
    from network.diffwave import fused
    try:
        @tf.function
        def step():                      # a graph: tf.init_scope pauses eager gradient tapes
            rng = tf.random.stateless_normal
            U, Wd = rng([2, 9, 4], [0, 1]), rng([3, 2, 4], [0, 2])
            out = fused._residual_core(U, rng([2, 1, 2], [0, 3]), None, Wd, tf.zeros([4]),
                                       rng([2, 4], [0, 4]), tf.zeros([4]), dilation=2,
                                       inv_scale=tf.constant(1.0))
            return tf.gradients(tf.reduce_sum(out * out), Wd)[0]

        with tf.init_scope():            # eager, even when a model is built inside a graph
            fused._start_xla_quietly()
            grad = step()
        if not bool(tf.reduce_all(tf.math.is_finite(grad))):
            return "its probe gave no finite gradient"
    except _KERNEL_ERRORS as e:
        return str(e).strip().splitlines()[0].split("}}")[-1].strip()[:160]
    return None


def _backend() -> str:
    return "oneDNN" if onednn_enabled() else "Eigen"


def choose_impl(requested: str = "auto") -> str:
    """→ "fused" | "reference" for this process (see the module docstring)."""
    if requested not in IMPLS:
        raise ImplError(f"network.impl must be one of {', '.join(IMPLS)}; got {requested!r}")
    gpu = bool(tf.config.list_logical_devices("GPU"))
    if requested == "reference":
        return _announce("reference", "network.impl=reference")
    if requested == "auto" and gpu:
        return _announce("reference", "GPU: cuDNN runs the Keras layers")
    if "fused" not in _probed:
        _probed["fused"] = _probe_fused()
    why_not = _probed["fused"]
    if why_not is None:
        return _announce("fused", "GPU" if gpu else _backend())
    if requested == "fused":
        raise ImplError(f"network.impl=fused cannot run on this machine ({why_not}); "
                        f"use network.impl=auto or reference")
    return _announce("reference", f"the fused layers cannot run here: {why_not}")


def _announce(impl: str, why: str) -> str:
    if (impl, why) not in _announced:
        _announced.add((impl, why))
        print(f"DiffWave: {impl} ({why})", flush=True)
    return impl
