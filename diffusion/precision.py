"""The compute precision of this process, from what the hardware does natively (training and
sampling share it).

    policy = apply_policy(params.train, purpose="training")   # "float32" | "mixed_bfloat16" | …

train.mixed_precision asks for low precision: fp16 with loss scaling on a GPU, bf16 on a CPU.
A CPU runs bf16 natively only through oneDNN on bf16 instructions (x86 AVX512_BF16/AMX, ARM
BF16); elsewhere TF either emulates it (Eigen: slower than float32) or has no kernel (oneDNN
on AVX2 aborts, or kills the process, at the first bf16 matmul). There the request gives one
warning and float32, or, with train.precision_fallback=error, a one-line PrecisionError.
Sampling always falls back (a run trained on one machine must sample on any other).
"""
from __future__ import annotations

import os
import platform
import sys

import keras
import tensorflow as tf

from network.diffwave.select import onednn_enabled


class PrecisionError(ValueError):
    """Low precision was forced (train.precision_fallback=error) where it is not native."""


_warned: set = set()


def _cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":")[0].strip() in ("flags", "Features"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_bf16_reason():
    """None if this CPU runs bf16 natively under TF, else why not (one phrase)."""
    if not onednn_enabled():
        return "TensorFlow's oneDNN is off here (TF_ENABLE_ONEDNN_OPTS), so bfloat16 is emulated"
    flags = _cpu_flags()
    if platform.machine().lower() in ("aarch64", "arm64"):
        native = "bf16" in flags
    else:
        native = bool(flags & {"avx512_bf16", "amx_bf16"})
    if not native:
        return "this CPU has no bfloat16 instructions (AVX512_BF16, AMX or ARM BF16)"
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or ""
    if cap and "BF16" not in cap.upper() and "AMX" not in cap.upper() and cap.upper() != "ALL":
        return f"ONEDNN_MAX_CPU_ISA={cap} leaves oneDNN without bfloat16"
    return _probe_bf16()


def _probe_bf16():
    """A bf16 dilated conv and matmul, forward and backward (only where the ISA has bf16)."""
    @tf.function
    def step():
        x = tf.cast(tf.random.stateless_normal([1, 16, 4], [0, 1]), tf.bfloat16)
        w = tf.cast(tf.random.stateless_normal([3, 4, 4], [0, 2]), tf.bfloat16)
        y = tf.matmul(tf.reshape(tf.nn.conv1d(x, w, 1, "SAME", dilations=2), [16, 4]),
                      tf.cast(tf.ones([4, 4]), tf.bfloat16))
        return tf.gradients(tf.reduce_sum(tf.cast(y, tf.float32)), w)[0]
    try:
        with tf.init_scope():
            step()
    except tf.errors.OpError as e:
        return f"TensorFlow has no bfloat16 kernel here ({str(e).strip().splitlines()[0][:80]})"
    return None


def apply_policy(train_params, purpose: str = "training") -> str:
    """Sets Keras' global dtype policy for this process and returns its name."""
    policy = "float32"
    if train_params.mixed_precision:
        if tf.config.list_logical_devices("GPU"):
            policy = "mixed_float16"
        else:
            why_not = cpu_bf16_reason()
            if why_not is None:
                policy = "mixed_bfloat16"
            elif purpose == "training" and train_params.precision_fallback == "error":
                raise PrecisionError(f"train.mixed_precision=true: {why_not}; set "
                                     f"train.precision_fallback=warn to run in float32")
            elif why_not not in _warned:
                _warned.add(why_not)
                print(f"warning: train.mixed_precision=true but {why_not}: {purpose} in "
                      f"float32", file=sys.stderr, flush=True)
    keras.mixed_precision.set_global_policy(policy)
    return policy
