"""Exponential moving average of a model's weights (the weights used for sampling).

    ema = EMA(model, decay=0.999)        # inside strategy.scope()
    ema.update(step)                     # after each optimizer step (cross-replica context)
    with ema.swapped(model): ...         # the model holds the averaged weights inside the block

The decay warms up as min(decay, (1 + n)/(10 + n)) so the first updates are not dominated by
the random initialisation (the tf.train.ExponentialMovingAverage num_updates rule).
"""
from __future__ import annotations

import contextlib

import tensorflow as tf


class EMA(tf.Module):
    def __init__(self, model, decay: float):
        super().__init__(name="ema")
        self.decay = float(decay)
        self.shadow = [tf.Variable(v.value if hasattr(v, "value") else v, trainable=False,
                                   name=f"ema_{i}")
                       for i, v in enumerate(model.trainable_variables)]

    def update(self, model, step) -> None:
        n = tf.cast(step, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + n) / (10.0 + n))
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
