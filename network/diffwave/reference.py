"""The reference DiffWave implementation (`network.impl=reference`): lmnt-com/diffwave's
residual block line for line, on Keras layers and automatic differentiation only.

It runs wherever Keras runs (Eigen, oneDNN, cuDNN, any precision the device has) and is the
definition the fused implementation (fused.py) is tested against. Same weights as fused.py:
both read the layers of model.ResidualBlock / model.DiffWave.

    x ← ReLU(input_projection(audio))
    for each layer i (dilation d_i = 2^(i mod cycle)):
        y = dilated_conv(x + step_projection(emb)) [+ cond_projection(c)]     # C → 2C, k = 3
        gate, filter = split(y);  z = σ(gate)·tanh(filter)
        residual, skip = split(output_projection(z))                          # C → 2C, 1×1
        x ← (x + residual)/√2;  Σskip += skip
    ε̂ = output_projection(ReLU(skip_projection(Σskip/√L)))
"""
from __future__ import annotations

import math

from keras import ops


def residual_block(block, x, emb, cond=None):
    """One layer on the block's Keras layers → (x_next, skip). x [B,T,C], emb [B,512]."""
    y = x + block.step_projection(emb)[:, None, :]
    y = block.dilated_conv(y)
    if cond is not None:
        y = y + block.cond_projection(cond)
    gate, filt = ops.split(y, 2, axis=-1)
    residual, skip = ops.split(block.output_projection(ops.sigmoid(gate) * ops.tanh(filt)), 2, -1)
    return (x + residual) / math.sqrt(2.0), skip


def trunk(net, audio, emb, cond, training=None):
    """audio [B,T,1], emb [B,512], cond None | [B,1,128] | [B,T,n_mels] → ε̂ [B,T,1] float32."""
    x = ops.relu(net.input_projection(audio))
    total = 0.0
    for block in net.blocks:
        x, skip = residual_block(block, x, emb, cond)
        total = total + skip
    y = ops.relu(net.skip_projection(total / math.sqrt(len(net.blocks))))
    return ops.cast(net.output_projection(y), "float32")
