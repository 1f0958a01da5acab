"""Exponential moving average of a model's weights (the weights used for sampling).

    ema = EMA(model, decay=0.999)        # inside strategy.scope()
    ema.update(step)                     # after each optimizer step (cross-replica context)
    with ema.swapped(model): ...         # the model holds the averaged weights inside the block

The decay warms up so the first updates are not dominated by the random initialisation:
min(decay, (1 + n)/(10 + n)) (tf.train.ExponentialMovingAverage's num_updates rule), or with
power > 0 diffusers' EMAModel rule min(decay, 1 − (1 + n)^−power) (teticio: power 0.75).
"""
from __future__ import annotations

import contextlib

import tensorflow as tf


class EMA(tf.Module):
    def __init__(self, model, decay: float, power: float = 0.0):
        super().__init__(name="ema")
        self.decay, self.power = float(decay), float(power)
        self.shadow = [tf.Variable(v.value if hasattr(v, "value") else v, trainable=False,
                                   name=f"ema_{i}")
                       for i, v in enumerate(model.trainable_variables)]

    def update(self, model, step) -> None:
        n = tf.cast(step, tf.float32)
        warm = 1.0 - (1.0 + n) ** -self.power if self.power > 0 else (1.0 + n) / (10.0 + n)
        decay = tf.minimum(self.decay, warm)
        for shadow, var in zip(self.shadow, model.trainable_variables):
            shadow.assign(decay * shadow + (1.0 - decay) * tf.cast(var, shadow.dtype))

    def copy_to(self, model) -> None:
        for shadow, var in zip(self.shadow, model.trainable_variables):
            var.assign(shadow)

    @contextlib.contextmanager
    def swapped(self, model):
        """Temporarily loads the averaged weights into `model`, restoring them afterwards."""
        saved = [tf.identity(v.value if hasattr(v, "value") else v)
                 for v in model.trainable_variables]
        self.copy_to(model)
        try:
            yield model
        finally:
            for value, var in zip(saved, model.trainable_variables):
                var.assign(value)
