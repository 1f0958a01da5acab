"""The SavedModel: loads and runs in fresh processes through tf.saved_model.load,
tensorflow_hub.load and saved_model_cli, at two lengths, matching the Python sampler."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


def run(*cmd, check=True):
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600,
                         cwd=ROOT, env=ENV)
    if check:
        assert out.returncode == 0, out.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    for name, extra in (("uncond", []), ("class", ["--set", "conditioning=class"]),
                        ("bf16", ["--set", "mixed_precision=true"])):
        run(sys.executable, ROOT / "train.py", "--data", ROOT / "dataset" / "digits", "--run",
            root / name, "--preset", "tiny", "--steps", "3", *extra)
        run(sys.executable, ROOT / "export.py", "--run", root / name, "--out",
            root / f"{name}_model", "--chunk-seconds", "0.05")
    return root


def python_sampler(run_dir, num, length, seed, label=None):
    """The reference: generate.py's path (load_run + sample) in this process."""
    import tensorflow as tf

    from diffusion.core.sampling import sample
    from diffusion.core.schedulers import build_scheduler
    from diffusion.families.registry import load_run
    params, family, model = load_run(run_dir)
    cond = {"label": tf.constant(label, tf.int32)} if label is not None else {}
    scheduler = build_scheduler(params, "fast")
    return sample(family.denoiser(model, cond), scheduler, [num, length, 1], seed).numpy()[..., 0]


LOAD = """
import json, sys, numpy as np, tensorflow as tf
{loader}
out = {{}}
for length in (1000, 2345):
    audio = m.signatures["serving_default"](num_samples=tf.constant(2), length=tf.constant(length),
                                            seed=tf.constant(7))["audio"].numpy()
    out[length] = audio.tolist()
x = tf.random.normal([1, 300, 1], seed=1)
eps = m.signatures["denoise"](x_t=x, t=tf.constant([3.0]))["epsilon"]
out["denoise"] = list(eps.shape)
try:
    m.signatures["serving_default"](num_samples=tf.constant(1), length=tf.constant(0),
                                    seed=tf.constant(0))
    out["error"] = None
except tf.errors.InvalidArgumentError as e:
    out["error"] = e.message
json.dump(out, open(sys.argv[1], "w"))
"""


@pytest.mark.parametrize("loader", [
    "m = tf.saved_model.load(sys.argv[2])",
    "import tensorflow_hub as hub; m = hub.load(sys.argv[2])",
])
def test_fresh_process_loads_and_matches_python_sampler(exported, tmp_path, loader):
    script = tmp_path / "load.py"
    script.write_text(LOAD.format(loader=loader))
    run(sys.executable, script, tmp_path / "out.json", exported / "uncond_model")
    result = json.loads((tmp_path / "out.json").read_text())
    for length in (1000, 2345):
        audio = np.array(result[str(length)])
        assert audio.shape == (2, length)
        np.testing.assert_allclose(audio, python_sampler(exported / "uncond", 2, length, 7),
                                   atol=1e-4)
    assert result["denoise"] == [1, 300, 1]
    assert result["error"] and "length must be >= 1" in result["error"]


def test_a_mixed_bfloat16_run_exports_and_matches_its_python_sampler(exported, tmp_path):
    import keras
    script = tmp_path / "load.py"
    script.write_text(LOAD.format(loader="m = tf.saved_model.load(sys.argv[2])"))
    run(sys.executable, script, tmp_path / "out.json", exported / "bf16_model")
    audio = np.array(json.loads((tmp_path / "out.json").read_text())["1000"])
    try:
        reference = python_sampler(exported / "bf16", 2, 1000, 7)   # sets the bf16 policy
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert audio.shape == (2, 1000) and np.all(np.isfinite(audio))
    np.testing.assert_allclose(audio, reference, atol=2e-2)       # bf16: 8-bit mantissa


def test_saved_model_cli_run(exported, tmp_path):
    cli = Path(sys.executable).parent / "saved_model_cli"
    shown = run(cli, "show", "--dir", exported / "class_model", "--all")
    assert "signature_def['denoise']" in shown.stdout and "inputs['label']" in shown.stdout
    for length in (800, 1601):
        out_dir = tmp_path / f"o{length}"
        run(cli, "run", "--dir", exported / "class_model", "--tag_set", "serve",
            "--signature_def", "serving_default", "--input_exprs",
            f"num_samples=2;length={length};seed=3;label=[4,9]", "--outdir", out_dir)
        audio = np.load(out_dir / "audio.npy")
        assert audio.shape == (2, length)
        np.testing.assert_allclose(audio, python_sampler(exported / "class", 2, length, 3,
                                                         label=[4, 9]), atol=1e-4)
    bad = run(cli, "run", "--dir", exported / "class_model", "--tag_set", "serve",
              "--signature_def", "serving_default", "--input_exprs",
              "num_samples=1;length=100;seed=3;label=[12]", "--outdir", tmp_path / "bad",
              check=False)
    assert bad.returncode != 0 and "label must be < 10" in bad.stderr


def test_export_refuses_to_overwrite_and_bad_runs(exported, tmp_path):
    existing = run(sys.executable, ROOT / "export.py", "--run", exported / "uncond", "--out",
                   exported / "uncond_model", check=False)
    assert existing.returncode == 2 and "exists and is not empty" in existing.stderr
    assert (exported / "uncond_model" / "saved_model.pb").exists()
    missing = run(sys.executable, ROOT / "export.py", "--run", tmp_path / "nope", "--out",
                  tmp_path / "m", check=False)
    assert missing.returncode == 2 and "no such run directory" in missing.stderr
    sampler = run(sys.executable, ROOT / "export.py", "--run", exported / "uncond", "--out",
                  tmp_path / "m2", "--sampler", "euler", check=False)
    assert sampler.returncode == 2 and "unknown sampler 'euler'" in sampler.stderr
