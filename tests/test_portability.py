"""Runs on every CPU TensorFlow runs on: the DiffWave implementation and the precision are chosen
from what the machine can do. Regression tests for what failed on an AVX2-only CPU (oneDNN off
by default there, no bf16 instructions): the fused backward's dilated Conv2DBackpropInput, and
every mixed_bfloat16 path. `ONEDNN_MAX_CPU_ISA=AVX2` makes oneDNN behave as on such a CPU."""
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from test_training import DIGITS, ROOT

from configs import get_preset
from network.diffwave import select
from params import ParamsError, apply_overrides


def _train(run, env, *args):
    cmd = [sys.executable, str(ROOT / "train.py"), "--data", DIGITS, "--run", str(run),
           "--preset", "tiny", "--steps", "3", "--set", "log_every=1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**os.environ, **env})


def test_auto_falls_back_to_the_reference_when_the_fused_probe_fails(monkeypatch, capsys):
    monkeypatch.setattr(select, "_probed", {})
    monkeypatch.setattr(select, "_announced", set())
    monkeypatch.setattr(select, "_probe_fused", lambda: "no dilated backprop here")
    assert select.choose_impl("auto") == "reference"
    assert select.choose_impl("auto") == "reference"                       # printed once
    assert capsys.readouterr().out == \
        "DiffWave: reference (the fused layers cannot run here: no dilated backprop here)\n"
    with pytest.raises(select.ImplError, match=r"^network.impl=fused cannot run on this machine "
                                               r"\(no dilated backprop here\)"):
        select.choose_impl("fused")
    assert select.choose_impl("reference") == "reference"


def test_auto_picks_the_fused_layers_where_they_run(monkeypatch, capsys):
    import tensorflow as tf
    if tf.config.list_logical_devices("GPU"):
        pytest.skip("on a GPU auto means the reference")
    monkeypatch.setattr(select, "_announced", set())
    assert select.choose_impl("auto") == "fused"          # a CPU: oneDNN or Eigen
    backend = "oneDNN" if select.onednn_enabled() else "Eigen"
    assert capsys.readouterr().out == f"DiffWave: fused ({backend})\n"


def test_impl_is_a_validated_param():
    assert get_preset("tiny").network.impl == "auto"
    assert apply_overrides(get_preset("tiny"), ["impl=reference"]).network.impl == "reference"
    with pytest.raises(ParamsError, match="network.impl"):
        apply_overrides(get_preset("tiny"), ["network.impl=fastest"])


def test_precision_policy_follows_the_hardware():
    import keras

    from diffusion.training.precision import apply_policy, cpu_bf16_reason
    train = SimpleNamespace(mixed_precision=False, precision_fallback="error")
    try:
        assert apply_policy(train) == "float32"
        train.mixed_precision = True
        if cpu_bf16_reason() is None:                       # e.g. AVX512_BF16 with oneDNN
            assert apply_policy(train) == "mixed_bfloat16"
        else:
            with pytest.raises(ValueError, match="^train.mixed_precision=true: "):
                apply_policy(train)
            assert apply_policy(train, "sampling") == "float32"           # never an error
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_training_runs_with_onednn_off(tmp_path):
    # Was: "Current CPU implementations do not yet support dilation rates larger than 1"
    # from the fused backward's Conv2DBackpropInput (Eigen), i.e. `make demo` on AVX2 CPUs.
    out = _train(tmp_path / "run", {"TF_ENABLE_ONEDNN_OPTS": "0"})
    assert out.returncode == 0, out.stderr
    assert "DiffWave: fused (Eigen)" in out.stdout
    assert (tmp_path / "run" / "checkpoints" / "ckpt-3.index").exists()


@pytest.mark.parametrize("env", [{"ONEDNN_MAX_CPU_ISA": "AVX2"}, {"TF_ENABLE_ONEDNN_OPTS": "0"}],
                         ids=["onednn-avx2", "onednn-off"])
def test_bf16_without_native_bf16_warns_and_trains_in_float32(tmp_path, env):
    # Was: every mixed_bfloat16 path failed (oneDNN on AVX2 has no bf16 convolution; its bf16
    # matmul kills the process) — now one warning and float32, or a one-line error if forced.
    out = _train(tmp_path / "run", env, "--set", "mixed_precision=true")
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "training in float32" in warnings[0], out.stderr
    forced = _train(tmp_path / "forced", env, "--set", "mixed_precision=true",
                    "--set", "precision_fallback=error")
    assert forced.returncode != 0
    lines = forced.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.mixed_precision=true: " in lines[0], forced.stderr
    assert "precision_fallback=warn" in lines[0]
