"""Classifier-free guidance for class-conditional mel-UNets (network.cfg_drop, --guidance):
the null label in training, the guided prediction, the parameter and CLI checks, and
fine-tuning a run without CFG into one with it (--init-from)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "dataset" / "splits" / "heldout-digits.jsonl"


def cli(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


def family_and_model(*overrides):
    from configs import get_preset
    from diffusion.families.registry import family_for
    from params import apply_overrides
    params = apply_overrides(get_preset("tiny", "mel-unet"),
                             ["network.num_classes=10", "data.sample_rate=16000", *overrides])
    family = family_for(params)
    return family, family.build_model()


def test_training_drops_labels_to_the_null_one_hot():
    family, model = family_and_model("network.cfg_drop=0.25")
    seed = tf.constant([3, 11])
    keep = family.training_draws(4000, seed)["class_keep"].numpy()
    assert abs((~keep).mean() - 0.25) < 0.03                              # p(drop) = cfg_drop
    np.testing.assert_array_equal(keep, family.training_draws(4000, seed)["class_keep"])
    x = tf.random.normal([4, 32, 32, 1], seed=2)
    t = tf.constant([10, 200, 500, 900])
    labels = tf.constant([1, 2, 3, 4])
    keep = tf.constant([True, False, True, False])
    cond = {**family.class_condition(labels), "class_keep": keep}
    got = family.denoiser(model, cond, training=True)(x, t).numpy()
    encoding = tf.one_hot(labels, 10) * tf.constant([[1.0], [0.0], [1.0], [0.0]])
    want = model({"image": x, "step": t, "encoding": encoding}, training=True).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert np.abs(got[1] - model({"image": x, "step": t, "encoding": tf.one_hot(labels, 10)},
                                 training=True).numpy()[1]).max() > 1e-4   # row 1 was dropped
    plain, _ = family_and_model()                                         # cfg_drop 0: no draws
    assert plain.training_draws(8, seed) == {}


def test_the_guided_prediction_follows_the_formula():
    family, model = family_and_model("network.cfg_drop=0.1")
    x = tf.random.normal([2, 32, 32, 1], seed=4)
    t = tf.constant([300, 700])
    onehot = tf.one_hot([7, 3], 10)
    cond_eps = model({"image": x, "step": t, "encoding": onehot}).numpy()
    null_eps = model({"image": x, "step": t, "encoding": tf.zeros_like(onehot)}).numpy()
    for scale in (3.0, tf.constant(3.0)):                   # a Python number or a tensor
        guided = family.denoiser(model, {"encoding": onehot, "guidance": scale})(x, t).numpy()
        np.testing.assert_allclose(guided, null_eps + 3.0 * (cond_eps - null_eps), atol=1e-5)
    assert family.class_condition([7, 3], 1.0).keys() == {"encoding"}    # s = 1: one pass
    one = family.denoiser(model, {"encoding": onehot, "guidance": tf.constant(1.0)})(x, t)
    np.testing.assert_allclose(one.numpy(), cond_eps, atol=1e-6)
    # network.guidance is the default scale; sampling with it is seeded and differs from s = 1
    family.params.network.guidance = 2.5
    cond = family.class_condition(np.array([7, 3]))
    assert cond["guidance"] == 2.5
    scheduler = family.scheduler("ddim", 3)
    a, b = (family.sample(model, scheduler, [2, 32, 32, 1], cond, seed=5).numpy()
            for _ in range(2))
    np.testing.assert_array_equal(a, b)
    c = family.sample(model, scheduler, [2, 32, 32, 1], family.class_condition([7, 3], 1.0),
                      seed=5).numpy()
    assert np.abs(a - c).max() > 1e-4


def test_guidance_params_are_checked():
    from configs import get_preset
    from params import ParamsError, apply_overrides
    base = ["network.num_classes=10", "data.sample_rate=16000"]
    for extra, message in ((["network.guidance=3"], "needs a model trained with"),
                           (["network.cfg_drop=1.0"], r"cfg_drop must be in \[0, 1\)"),
                           (["network.cfg_drop=0.1", "network.guidance=0"], "guidance must be > 0")):
        with pytest.raises(ParamsError, match=message):
            apply_overrides(get_preset("tiny", "mel-unet"), base + extra)
    with pytest.raises(ParamsError, match="for class-conditional runs"):
        apply_overrides(get_preset("tiny", "mel-unet"), ["network.cfg_drop=0.1"])


def test_fine_tuning_into_guidance_and_generating_with_it(tmp_path):
    plain, tuned = tmp_path / "plain", tmp_path / "cfg"
    common = ["--model", "mel-unet", "--data", DIGITS, "--preset", "tiny", "--steps", "3",
              "--set", "network.num_classes=10", "--set", "data.sample_rate=16000"]
    out = cli(ROOT / "train.py", *common, "--run", plain)
    assert out.returncode == 0, out.stderr
    out = cli(ROOT / "train.py", *common, "--run", tuned, "--set", "network.cfg_drop=0.1",
              "--init-from", plain)                       # cfg_drop does not change the weights
    assert out.returncode == 0 and "fine-tuning from" in out.stdout, out.stderr
    packaged = tmp_path / "pretrained"                 # the default scale travels with it
    out = cli(ROOT / "export.py", "--run", tuned, "--out", packaged, "--format", "pretrained",
              "--guidance", "2.5")
    assert out.returncode == 0, out.stderr
    assert json.loads((packaged / "params.json").read_text())["network"]["guidance"] == 2.5
    gen = cli(ROOT / "generate.py", "--run", packaged, "--label", "4", "--steps", "2", "--num",
              "1", "--seconds", "0.5", "--out", tmp_path / "o")
    assert gen.returncode == 0 and "label 4, guidance 2.5" in gen.stdout, gen.stderr
    out = cli(ROOT / "export.py", "--run", plain, "--out", tmp_path / "p2", "--format",
              "pretrained", "--guidance", "2.5")
    assert out.returncode == 2 and "needs a model trained with network.cfg_drop" in out.stderr
    assert not (tmp_path / "p2").exists()
    refused = cli(ROOT / "generate.py", "--run", plain, "--label", "4", "--guidance", "3",
                  "--steps", "2", "--out", tmp_path / "x")
    assert refused.returncode == 2 and "not trained for classifier-free guidance" in \
        refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "x").exists()
