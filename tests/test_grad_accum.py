"""Gradient accumulation in the shared trainer (accum 2 × batch b = one batch of 2b; exact
resume still holds) and fine-tuning with train.py --init-from."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from configs import get_preset
from diffusion.families.registry import family_for
from diffusion.training.engine import Trainer
from params import apply_overrides

ROOT = Path(__file__).resolve().parent.parent
AUDIO = np.random.default_rng(0).uniform(-0.5, 0.5, (16, 2000, 1)).astype(np.float32)


def make_trainer(run, batch, accum=1):
    """The trainer is family-agnostic: the tiny DiffWave traces in seconds (the UNet in 15)."""
    params = apply_overrides(get_preset("tiny", "diffwave"),
                             [f"batch_size={batch}", f"grad_accum_steps={accum}",
                              "crop_samples=2000", "checkpoint_every=1000"])
    dataset = tf.data.Dataset.from_tensor_slices({"audio": AUDIO}).repeat().batch(batch)
    return Trainer(family_for(params), params, tf.distribute.get_strategy(), run, dataset)


def weights(trainer):
    return [v.numpy() for v in trainer.model.trainable_variables]


@pytest.fixture(scope="module")
def big_batch(tmp_path_factory):
    trainer = make_trainer(tmp_path_factory.mktemp("b4"), 4)
    initial = weights(trainer)
    trainer.run_step()
    after_one = weights(trainer)
    trainer.save()
    trainer.run_step()
    return trainer, initial, after_one, weights(trainer)


def test_two_micro_batches_equal_one_double_batch_and_resume_exactly(big_batch, tmp_path):
    _, initial, after_one, big = big_batch
    accum = make_trainer(tmp_path / "a", 2, accum=2)
    accum.run_step()
    assert accum.step == 1                                   # one update of 2 micro-batches
    for a, b in zip(weights(accum), after_one):
        np.testing.assert_allclose(a, b, atol=3e-5)
    assert max(np.abs(b - i).max() for b, i in zip(after_one, initial)) > 1e-4   # it moved
    accum.save()
    accum.run_step()
    for a, b in zip(weights(accum), big):
        np.testing.assert_allclose(a, b, atol=3e-5)
    resumed = make_trainer(tmp_path / "a", 2, accum=2)     # a new process's view: restore
    assert resumed.restore() == 1
    resumed.run_step()
    for a, b in zip(weights(resumed), weights(accum)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_unet2d_checkpoints_hold_every_weight(tmp_path):
    """Regression: layers kept in lists were missing from tf.train.Checkpoint."""
    params = apply_overrides(get_preset("tiny", "mel-unet"), ["block_channels=8,16,16"])
    family = family_for(params)
    a, b = family.build_model(), family.build_model()
    for v in a.trainable_variables:
        v.assign(v + 1.0)
    path = tf.train.Checkpoint(model=a).save(str(tmp_path / "ck"))
    tf.train.Checkpoint(model=b).restore(path).assert_consumed()
    for x, y in zip(a.trainable_variables, b.trainable_variables):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_init_from_copies_weights_and_starts_a_fresh_step(big_batch, tmp_path):
    source = big_batch[0]
    fine = make_trainer(tmp_path / "fine", 4)
    assert fine.init_from(source.run_dir).endswith("ckpt-1")
    assert fine.step == 0
    for a, b in zip(weights(fine), big_batch[2]):
        np.testing.assert_array_equal(a, b)
    reader = tf.train.load_checkpoint(f"{source.run_dir}/checkpoints/ckpt-1")
    for i, shadow in enumerate(fine.ema.shadow):
        np.testing.assert_array_equal(
            shadow.numpy(), reader.get_tensor(f"ema/shadow/{i}/.ATTRIBUTES/VARIABLE_VALUE"))
    from params import ParamsError
    from train import check_init_from
    src = tmp_path / "src"
    src.mkdir()
    get_preset("tiny", "mel-unet").save(str(src / "params.json"))
    other = apply_overrides(get_preset("tiny", "mel-unet"), ["block_channels=8,16,16"])
    with pytest.raises(ParamsError, match=r"network params differ \(network.block_channels"):
        check_init_from(str(src), other)
    check_init_from(str(src), get_preset("tiny", "mel-unet"))      # same network: fine
    out = subprocess.run([sys.executable, str(ROOT / "train.py"), "--model", "mel-unet",
                          "--data", str(ROOT / "dataset" / "chorales"), "--run",
                          str(tmp_path / "new"), "--preset", "tiny", "--set",
                          "block_channels=8,16,16", "--init-from", str(src)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 2 and "error: --init-from" in out.stderr and \
        "network params differ" in out.stderr, out.stderr
