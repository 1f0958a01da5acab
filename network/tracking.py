"""The one work-around for layers that live in Python containers.

Keras 3 builds and calls layers kept in lists, tuples or dicts, but `tf.train.Checkpoint`
follows attributes only: a layer reachable only through a list is missing from checkpoints.
Every network therefore names each such layer as an attribute too:

    self.blocks = track(self, {f"residual_block_{i}": Block(...) for i in range(n)})

Same objects, attributes set in the order given (so the variable order, which the optimizer's
slots follow, and the checkpoint paths `model/<name>/...` are exactly what they were).
"""
from __future__ import annotations


def track(owner, named: dict) -> list:
    """Sets `owner.<name> = layer` for each item, in order; returns the layers as a list."""
    for name, layer in named.items():
        setattr(owner, name, layer)
    return list(named.values())
