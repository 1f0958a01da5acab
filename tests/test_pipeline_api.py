"""The Python API (diffusion.Pipeline): every python block of docs/python-api.md runs as
written, against the bundled pretrained models, a tiny DiffWave run exported by export.py and a
tiny diffgen run (untrained weights: the API, not the sound, is under test); a second call
does not trace again; every bad argument is a one-line error that names it."""
import contextlib
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest

import export
from configs import get_preset
from diffusion.families.registry import family_for
from diffusion.requests import Accepts, make_request
from diffusion.training.checkpoints import package_run
from params import apply_overrides

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "python-api.md"
SAMPLERS = ("fast", "ddpm", "ddim")


def tiny_run(run: Path, model: str, *overrides) -> Path:
    """A run directory of the tiny preset with its initial weights (no training step)."""
    params = apply_overrides(get_preset("tiny", model), list(overrides))
    run.mkdir(parents=True)
    params.save(run / "params.json")
    package_run(family_for(params).build_model(), 0, run, "float32")
    return run


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A directory laid out as the page assumes: pretrained/ and dataset/ (the repository's),
    exported/digits (a class-conditional DiffWave SavedModel) and runs/t2a (diffgen)."""
    root = tmp_path_factory.mktemp("api")
    for name in ("pretrained", "dataset"):
        (root / name).symlink_to(ROOT / name)
    ae = tiny_run(root / "runs" / "ae", "diffae")
    tiny_run(root / "runs" / "t2a", "diffgen", f"network.autoencoder={ae}")
    dw = tiny_run(root / "runs" / "digits-dw", "diffwave", "conditioning=class")
    assert export.main(["--run", str(dw), "--out", str(root / "exported" / "digits")]) == 0
    return root


@pytest.fixture(scope="module")
def doc(workspace):
    """(namespace, printed text) of the page's python blocks, run in order from `workspace`."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 5
    namespace, printed = {}, io.StringIO()
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        with contextlib.redirect_stdout(printed):
            for i, block in enumerate(blocks):
                exec(compile(block, f"{DOC} python block {i + 1}", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace, printed.getvalue()


def test_the_page_runs_and_prints_what_it_says(doc, workspace):
    namespace, printed = doc
    for line in ("(2, 16000) 16000 (3, 7)", "(1, 15872)", "(1, 16000) (1, 64, 64)",
                 "(2, 16000) 16000", str(("a string quartet playing a Bach chorale",) * 2),
                 "label: 12 is out of range 0..9", "seconds: must be a number > 0, got 0",
                 "text: pretrained/digits is a class-conditional mel-unet run: drop it (it is "
                 "for text models)", "(1, 64, 64, 1) (1, 16383)"):
        assert line in printed, printed
    saved = sorted(p.name for p in (workspace / "out" / "digits").iterdir())
    assert saved == [f"digits_ddim_seed0_{i}{end}" for i in range(2)
                     for end in (".png", ".wav", "_image.png")]
    out = namespace["out"]                      # the text-to-audio block's
    assert out.audio.dtype == np.float32 and out.audio.shape == (2, 16000)
    assert np.isfinite(out.audio).all() and out.sample_rate == 16000


def test_a_second_call_does_not_trace_again(doc):
    chorales = doc[0]["chorales"]
    family = chorales.run[1]

    def traces():
        return {(key, id(step)): step.experimental_get_tracing_count()
                for key, (_, *compiled) in family.__dict__["_steps"].items()
                for step in compiled}
    before = traces()
    out = chorales(num=1, seconds=1, seed=5, steps=10)
    assert out.audio.shape == (1, 16000) and traces() == before and len(before) == 2


def test_pipeline_errors_are_one_line_and_name_the_argument(doc, workspace):
    namespace = doc[0]
    pipe, chorales, served = namespace["pipe"], namespace["chorales"], namespace["served"]
    vocoder = namespace["vocoder"]
    diffusion = namespace["diffusion"]
    cases = [
        (lambda: chorales(vocoder=vocoder), "vocoder: pretrained/vocoder: Mel parameters "
                                           "differ: hop_length"),
        (lambda: pipe(label=1, vocoder=3), "vocoder: give a mel-conditioned DiffWave run"),
        (lambda: pipe(label=1, vocoder=pipe), "vocoder: pretrained/digits is a "
                                              "class-conditional mel-unet run, not a"),
        (lambda: vocoder(mel=str(DOC)), "mel: " + str(DOC)),
        (lambda: served(label=12), "label: must be < 10"),
        (lambda: served(label=1, sampler="ddim"), "sampler: exported/digits is an exported "
                                                  "SavedModel"),
        (lambda: diffusion.Pipeline.from_pretrained(workspace / "nowhere"),
         "nowhere: no such run directory"),
        (lambda: diffusion.Pipeline.from_pretrained(workspace / "runs" / "ae")(),
         "from_audio: " + str(workspace / "runs" / "ae") + " is a diffusion autoencoder"),
        (lambda: pipe(label=1, noise=np.zeros([1, 3])), "noise: x_T must be [1, 64, 64, 1]"),
    ]
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        for call, message in cases:
            with pytest.raises(ValueError) as caught:
                call()
            assert message in str(caught.value) and "\n" not in str(caught.value), \
                str(caught.value)
    finally:
        os.chdir(cwd)


# --- the requests alone (no model) -------------------------------------------------------------
CLASS = Accepts("runs/dw", "a class-conditional diffwave run", "class", SAMPLERS, "fast", 50,
                num_classes=10)
WAVE = Accepts("runs/u", "an unconditional diffwave run", "waveform", SAMPLERS, "fast", 50)
VOCODER = Accepts("runs/voc", "a mel vocoder", "vocoder", SAMPLERS, "fast", 50, n_mels=80)
DIGITS = Accepts("pretrained/digits", "a class-conditional mel-unet run", "mel-unet", SAMPLERS,
                 "ddim", 1000, num_classes=10, guided=True, guidance=2.0)
CHORALES = Accepts("pretrained/chorales", "an unconditional mel-unet run", "mel-unet",
                   SAMPLERS, "ddim", 1000)
TEXT = Accepts("runs/t2a", "a text-to-audio (diffgen) run", "text", ("v",), "v", 1000,
               guided=True, guidance=3.0)
SERVED = Accepts("exported/digits", "an exported model", "class", num_classes=None,
                 reads_audio=False)
SERVED_VOCODER = Accepts("exported/voc", "an exported mel vocoder", "vocoder", n_mels=80,
                         reads_audio=False)
SERVED_MEL = Accepts("exported/mel", "an exported mel-unet model", "mel-unet", seconds=None,
                     reads_audio=False)
SERVED_TEXT = Accepts("exported/t2a", "an exported text-to-audio model", "text", guided=True,
                      reads_audio=False)
MEL = np.zeros([4, 80], np.float32)

BAD = [
    (CLASS, dict(label=12), "label: 12 is out of range 0..9"),
    (CLASS, dict(), "label: runs/dw is class-conditional: give a label 0..9 (one, or one per "
                    "clip)"),
    (CLASS, dict(label=[1, 2], num=3), "label: give one value or 3 (one per clip, num=3), got 2"),
    (CLASS, dict(label="3"), "label: must be an integer, got '3'"),
    (CLASS, dict(label=[1, 2.5], num=2), "label: must be an integer, got 2.5"),
    (CLASS, dict(label=1, num=0), "num: must be >= 1, got 0"),
    (CLASS, dict(label=1, num=2.0), "num: must be an integer, got 2.0"),
    (CLASS, dict(label=1, seed=-1), "seed: must be in 0..2147483647, got -1"),
    (CLASS, dict(label=1, seconds=-1), "seconds: must be a number > 0, got -1"),
    (CLASS, dict(label=1, seconds=float("nan")), "seconds: must be a number > 0, got nan"),
    (CLASS, dict(label=1, sampler="v"), "sampler: runs/dw takes fast | ddpm | ddim, got 'v'"),
    (CLASS, dict(label=1, steps=5), "steps: applies to sampler ddim or v (sampler fast has "
                                    "fixed steps)"),
    (CLASS, dict(label=1, sampler="ddim", steps=51), "steps: must be in 1..50, got 51"),
    (CLASS, dict(label=1, eta=0.5), "eta: applies to sampler ddim, not fast"),
    (CLASS, dict(label=1, sampler="ddim", eta=-1), "eta: must be a number >= 0, got -1"),
    (CLASS, dict(label=1, text="a choir"), "text: runs/dw is a class-conditional diffwave run: "
                                           "drop it (it is for text models)"),
    (CLASS, dict(label=1, guidance=2), "guidance: runs/dw is a class-conditional diffwave run: "
                                       "drop it (it is for mel-unet / text models)"),
    (WAVE, dict(label=1), "label: runs/u is not class-conditional; drop it"),
    (WAVE, dict(mel=MEL), "mel: runs/u is an unconditional diffwave run: drop it"),
    (VOCODER, dict(), "mel: runs/voc is a mel vocoder: give a log-mel [frames, 80] or an audio "
                      "file path"),
    (VOCODER, dict(mel=np.zeros([10, 64])), "mel: give a log-mel [frames, 80] or an audio file "
                                            "path, got an array of shape [10, 64]"),
    (VOCODER, dict(mel=np.zeros([0, 80])), "mel: give a log-mel [frames, 80] or an audio file "
                                           "path, got an array of shape [0, 80]"),
    (VOCODER, dict(mel=np.full([4, 80], np.nan)), "mel: holds NaN or infinite values"),
    (VOCODER, dict(mel="no/such.wav"), "mel: no such file no/such.wav"),
    (VOCODER, dict(mel={"a": 1}), "mel: give a log-mel [frames, 80] or an audio file path, "
                                  "got dict"),
    (VOCODER, dict(mel=MEL, seconds=1), "seconds: runs/voc is a mel vocoder: drop it"),
    (VOCODER, dict(mel=MEL, label=1), "label: runs/voc is a mel vocoder: drop it"),
    (VOCODER, dict(mel=MEL, consistency=-1), "consistency: must be a number >= 0 (0 = off), "
                                             "got -1"),
    (VOCODER, dict(mel=MEL, refine_steps=1.5), "refine_steps: must be an integer, got 1.5"),
    (DIGITS, dict(label=1, guidance=0), "guidance: must be a number > 0 (1 = no guidance), "
                                        "got 0"),
    (DIGITS, dict(label=1, decode_steps=5), "decode_steps: pretrained/digits is a "
                                            "class-conditional mel-unet run: drop it"),
    (CHORALES, dict(guidance=2), "guidance: pretrained/chorales is not trained for "
                                 "classifier-free guidance; drop it"),
    (CHORALES, dict(label=0), "label: pretrained/chorales is not class-conditional; drop it"),
    (TEXT, dict(), "text: runs/t2a is a text-to-audio (diffgen) run: give a prompt"),
    (TEXT, dict(text="  "), "text: give a non-empty string (or one per clip)"),
    (TEXT, dict(text=["a"], num=2), "text: give one value or 2 (one per clip, num=2), got 1"),
    (TEXT, dict(text="a", steps=1001), "steps: must be in 1..1000, got 1001"),
    (TEXT, dict(text="a", decode_steps=0), "decode_steps: must be in 1..1000, got 0"),
    (TEXT, dict(text="a", sampler="ddim"), "sampler: runs/t2a takes v, got 'ddim'"),
    (TEXT, dict(text="a", vocoder="pretrained/vocoder"), "vocoder: runs/t2a is a "
                                                         "text-to-audio (diffgen) run: drop it"),
    (SERVED, dict(label=1, sampler="ddim"), "sampler: exported/digits is an exported SavedModel "
                                            "(sampler and steps fixed at export); drop it"),
    (SERVED, dict(label=1, steps=5), "steps: exported/digits is an exported SavedModel"),
    (SERVED, dict(label=-1), "label: must be >= 0, got -1"),
    (SERVED, dict(label=1, from_audio=str(DOC)), "from_audio: exported/digits is an exported "
                                                 "SavedModel (it samples from the seed's noise)"),
    (WAVE, dict(from_audio="no/such.wav"), "from_audio: no such file no/such.wav"),
    (WAVE, dict(from_audio=np.zeros([2, 5])), "from_audio: give an audio file path or finite "
                                              "mono samples [T], got an array of shape [2, 5]"),
    (WAVE, dict(from_audio=str(DOC), strength=0), "strength: must be in (0, 1], got 0"),
    (WAVE, dict(mask_end=1.0), "mask_end: keeps seconds of from_audio at every step"),
    (WAVE, dict(from_audio=str(DOC), slerp=str(DOC)), "slerp: decodes DDIM inversions: give "
                                                      "from_audio and sampler='ddim'"),
    (WAVE, dict(noise=np.zeros(3), from_audio=str(DOC)), "noise: is a starting x_T"),
    (WAVE, dict(loop=-1), "loop: must be >= 0, got -1"),
    (WAVE, dict(chunk_seconds=-1), "chunk_seconds: must be >= 0, got -1"),
    (WAVE, dict(bogus=1), "bogus: not an argument (arguments of an unconditional diffwave run"),
    (SERVED_VOCODER, dict(mel=str(DOC)), "mel: exported/voc takes a log-mel (.npy or an "
                                         "array): an exported vocoder cannot compute one from "
                                         "audio"),
    (SERVED_VOCODER, dict(mel=MEL, refine_steps=0), "refine_steps: exported/voc is an exported "
                                                    "SavedModel (plain sampling); drop it"),
    (SERVED_MEL, dict(vocoder="pretrained/vocoder"), "vocoder: exported/mel is an exported "
                                                     "SavedModel (Griffin-Lim inside)"),
    (SERVED_TEXT, dict(text="a", decode_steps=5), "decode_steps: exported/t2a is an exported "
                                                  "SavedModel (fixed at export); drop it"),
]


@pytest.mark.parametrize("accepts, arguments, message", BAD,
                         ids=[f"{a.kind}-{'-'.join(k) or 'none'}" for a, k, _ in BAD])
def test_a_bad_argument_is_a_one_line_error_naming_it(accepts, arguments, message):
    with pytest.raises(ValueError) as caught:
        make_request(accepts, **arguments)
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text, text


def test_requests_are_normalised_with_the_model_defaults():
    r = make_request(CLASS, num=2, label=np.int64(3))
    assert (r.label, r.seconds, r.sampler, r.steps, r.num) == ((3, 3), 1.0, "fast", None, 2)
    assert make_request(CLASS, num=2, label=np.array([4, 9])).label == (4, 9)
    assert make_request(DIGITS, label=1).guidance == 2.0
    assert make_request(CHORALES).guidance is None and make_request(CHORALES).sampler == "ddim"
    t = make_request(TEXT, num=2, text="a choir")
    assert (t.text, t.guidance, t.decode_steps, t.sampler) == (("a choir",) * 2, 3.0, 50, "v")
    v = make_request(VOCODER, mel=MEL, refine_steps=0)
    assert v.mel.dtype == np.float32 and v.refine_steps == 0 and v.consistency is None
    assert make_request(SERVED, label=[1]).sampler is None
    assert make_request(SERVED_MEL).seconds is None         # the export's own width
