"""evaluation/learning_curve.py on a tiny vocoder run with two checkpoints (ckpt-2, ckpt-4)."""
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SPLITS = ROOT / "dataset" / "splits"


@pytest.fixture(scope="module")
def curve_run(tmp_path_factory):
    """(run, valid.jsonl): 4 steps, a checkpoint every 2; two labelled digits and a chorale."""
    from train import main as train
    root = tmp_path_factory.mktemp("curve")
    assert train(["--model", "diffwave", "--data", str(SPLITS / "heldout-digits.jsonl"),
                  "--run", str(root / "run"), "--preset", "tiny", "--set",
                  "network.conditioning=mel", "--set", "train.checkpoint_every=2",
                  "--steps", "4"]) == 0
    rows = [json.loads(line) for line in (SPLITS / "heldout-digits.jsonl").open()][:2]
    rows.append(json.loads((SPLITS / "heldout-chorales.jsonl").open().readline()))
    valid = root / "valid.jsonl"
    valid.write_text("".join(json.dumps({"path": str((SPLITS / r["path"]).resolve()),
                                         "label": r.get("label")}) + "\n" for r in rows))
    return root / "run", valid


def test_curve_of_every_checkpoint_skips_done_steps_and_draws(curve_run, tmp_path, capsys):
    from evaluation.learning_curve import checkpoints, learning_curve, main
    run, valid = curve_run
    assert [step for step, _ in checkpoints(run)] == [2, 4]
    figure = tmp_path / "copy.png"
    assert main(["--run", str(run), "--data", str(valid), "--figure", str(figure)]) == 0
    lines = [json.loads(x) for x in (run / "curve.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4]
    for x in lines:
        assert x["clips"] == 3 and x["max_seconds"] == 1.5 and x["log_mel_l1_db"] > 0
        assert x["spectral_convergence"] > 0
        assert x["labelled"] in (0, 2)                 # 0: the digit head cannot run here
    assert lines[0]["log_mel_l1_db"] != lines[1]["log_mel_l1_db"]     # each its own weights
    for png in (run / "curve.png", figure):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    # Steps already there are skipped; a second pass does no work.
    messages = []
    again = learning_curve(run, valid, log=messages.append)
    assert [x["step"] for x in again] == [2, 4] and messages == []
    assert len((run / "curve.jsonl").read_text().splitlines()) == 2
    # The last step is the run's EMA weights as load_run gives them.
    from diffusion.families.registry import load_run
    from evaluation.learning_curve import point
    from evaluation.vocoder import heldout_clips
    params, family, model = load_run(run)
    clips = heldout_clips(valid, params, 40, 1.5)
    assert max(len(a) for _, a, _ in clips) == 1.5 * 16000 // 256 * 256
    assert point(family, model, clips, None, 0)["log_mel_l1_db"] == \
        pytest.approx(lines[1]["log_mel_l1_db"], rel=1e-5)
    # Lines of other settings are not mixed in.
    with pytest.raises(ValueError, match="holds steps of other settings"):
        learning_curve(run, valid, max_clips=2)
    assert main(["--run", str(tmp_path / "none"), "--data", str(valid)]) == 2
    assert "no checkpoint yet" in capsys.readouterr().err


def test_pick_spreads_the_cap_over_labelled_and_unlabelled_clips():
    from types import SimpleNamespace

    from evaluation.vocoder import pick
    sources = [SimpleNamespace(label=i % 10 if i < 30 else -1, i=i) for i in range(34)]
    chosen = pick(sources, 8)
    assert len(chosen) == 8 and sum(s.label >= 0 for s in chosen) == 4
    assert [s.i for s in chosen] == sorted(s.i for s in chosen)
    assert pick(sources, 40) == sources
    only = [s for s in sources if s.label >= 0]
    assert len(pick(only, 5)) == 5 and np.all([s.label >= 0 for s in pick(only, 5)])
