"""tf.distribute strategies by name, and logical CPU devices for testing them on one machine.

    configure_cpu_devices(2)            # before TensorFlow initialises its devices
    strategy = make_strategy("mirrored")

auto        MirroredStrategy over all GPUs when there are any, else the default strategy
mirrored    MirroredStrategy over all GPUs, else over all (logical) CPU devices
multiworker MultiWorkerMirroredStrategy from the TF_CONFIG environment variable
one_device  OneDeviceStrategy on the first GPU, else the CPU
"""
from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "mirrored", "multiworker", "one_device")
COLLECTIVE_TIMEOUT = 120.0   # seconds; generous for the first step's tracing


class StrategyError(ValueError):
    """A strategy that cannot be built here (the message says why)."""


def configure_cpu_devices(count: int) -> None:
    """Splits the CPU into `count` logical devices (MirroredStrategy tests without GPUs)."""
    if count <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as e:   # already initialised with another layout
        current = len(tf.config.list_logical_devices("CPU"))
        if current != count:
            raise StrategyError(f"cannot split the CPU into {count} devices after TensorFlow "
                                f"started ({e})") from None


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r} (choose from {', '.join(STRATEGIES)})")
    if name == "multiworker":        # before anything initialises the TF runtime
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise StrategyError("--strategy multiworker needs the TF_CONFIG environment variable")
        try:
            json.loads(config)["cluster"]["worker"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise StrategyError("TF_CONFIG must be JSON with cluster.worker and task") from None
        # Bounded collectives: a dead peer fails the step instead of hanging the job.
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=COLLECTIVE_TIMEOUT)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def is_chief(strategy) -> bool:
    """The worker that writes checkpoints and logs (task 0, or the only worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker"
                                              and resolver.task_id == 0)
