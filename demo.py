"""Play the bundled pretrained models (no training): WAVs, a labelled figure per clip, and an
HTML page with audio players.

    python demo.py [--pretrained pretrained] [--out runs/demo] [--seed 0]

For each model under --pretrained that is there (see pretrained/README.md):
  vocoder/  the mel vocoder on held-out clips (dataset/splits/heldout.jsonl): the even digits
            and a 2 s chorale excerpt, each as the real clip, Griffin-Lim from its
            log-mel (the baseline) and the vocoder from the same log-mel;
  digits/   a class-conditional model (DiffWave, or a mel-UNet: its images through Griffin-Lim
            and, when its Mel matches, through the vocoder above): one clip per digit (0–9);
  chorales/ an unconditional mel-UNet: two generated chorale excerpts and a variation of a
            held-out chorale, decoded as the digits are.
Writes OUT/<model>/*.wav and *.png (waveform + log-mel, data/figures.py) and OUT/index.html.
"""
from __future__ import annotations

import argparse
import html
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from params import quiet_tensorflow  # noqa: E402

ROOT = Path(__file__).resolve().parent
HELDOUT = ROOT / "dataset" / "splits" / "heldout.jsonl"
HELDOUT_CHORALES = ROOT / "dataset" / "splits" / "heldout-chorales.jsonl"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CHORALE_SECONDS = 2.0               # a 64-frame image of the chorales model (hop 512)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pretrained", default=str(ROOT / "pretrained"))
    p.add_argument("--out", default=str(ROOT / "runs" / "demo"))
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def write_clip(out_dir, name, audio, rate, title) -> dict:
    """OUT/name.wav and name.png; the page's entry for them."""
    import soundfile as sf

    from data.figures import save_clip_figure
    os.makedirs(out_dir, exist_ok=True)
    sf.write(os.path.join(out_dir, name + ".wav"), audio, rate, subtype="PCM_16")
    save_clip_figure(os.path.join(out_dir, name + ".png"), audio, rate, title)
    rel = os.path.basename(out_dir)
    return {"title": title, "wav": f"{rel}/{name}.wav", "png": f"{rel}/{name}.png"}


def vocoder_section(run, out, seed):
    """Real / Griffin-Lim / vocoder for one held-out clip of each even digit and a chorale."""
    import numpy as np

    from diffusion import Pipeline
    from evaluation.vocoder import GRIFFIN_LIM_ITERATIONS, heldout_clips, vocoded_versions
    pipe = Pipeline.from_pretrained(run)
    if pipe.accepts.kind != "vocoder":
        raise ValueError(f"{run}: vocoder/ holds a mel vocoder (a mel-conditioned DiffWave run)")
    rate, hop = pipe.sample_rate, pipe.params.network.hop_length
    clips = heldout_clips(HELDOUT, pipe.params)
    digits = {}
    for name, audio, label in clips:
        if label >= 0 and label % 2 == 0 and label not in digits:   # five words: < 60 s
            digits[label] = (name, audio)
    chorale = next((name, audio) for name, audio, label in clips if label < 0)
    chorale = (chorale[0], chorale[1][:int(CHORALE_SECONDS * rate) // hop * hop])
    entries = []
    batches = [[digits[k] for k in sorted(digits)], [chorale]]
    for batch in batches:
        versions = vocoded_versions(pipe, np.stack([a for _, a in batch]), seed,
                                    ("real", "griffin-lim", "consistent"))
        for i, (name, _) in enumerate(batch):
            stem = Path(name).stem
            for version, audio in versions.items():
                what = {"real": "real clip", "griffin-lim": f"Griffin-Lim "
                        f"({GRIFFIN_LIM_ITERATIONS} iterations)",
                        "consistent": "vocoder (measurement-consistent)"}[version]
                entries.append(write_clip(out, f"{stem}_{version}", audio[i], rate,
                                          f"{stem} (held out): {what} from its log-mel"))
    return "Mel vocoder on held-out clips (real · Griffin-Lim · vocoder)", entries


def _vocoder_beside(run, pipe):
    """The pretrained vocoder beside `run` (its Pipeline) when `pipe` is a mel-UNet whose Mel
    it matches, else None: the page plays Griffin-Lim and the vocoder (the README's quality
    table says which is better)."""
    vocoder = os.path.join(os.path.dirname(os.path.normpath(run)), "vocoder")
    if pipe.accepts.kind != "mel-unet" or \
            not os.path.isfile(os.path.join(vocoder, "params.json")):
        return None
    try:
        return pipe.check_vocoder(vocoder)
    except ValueError as e:
        print(f"note: {e}; Griffin-Lim only")
        return None


def _decoded(pipe, vocoder, **arguments):
    """[(suffix, label, audio [N, T], rate)] of one call of `pipe`: its own decoding
    (Griffin-Lim for a mel-UNet) and, with `vocoder`, the same images through the vocoder."""
    import numpy as np
    out = pipe(**arguments, **({} if vocoder is None else {"vocoder": vocoder}))
    if out.images is None:                          # a waveform model: its own audio
        return [("", "", out.audio, out.sample_rate)]
    if vocoder is None:
        return [("", "Griffin-Lim", out.audio, out.sample_rate)]
    mel = pipe.family.mel                           # one Mel: its Griffin-Lim traces once
    griffin = np.stack([mel.image_to_audio(image) for image in out.images])
    return [("", "Griffin-Lim", griffin[:, :out.audio.shape[1]], pipe.sample_rate),
            ("_vocoder", "vocoder", out.audio, out.sample_rate)]


def _write_decoded(out, decoded, names, titles, data_params):
    """Each clip of each decoding: OUT/<name><suffix>.wav/.png, titled, levelled as the
    training data was (a mel image's dB are relative to its loudest bin: no level of its
    own)."""
    from data.pipeline import normalize
    entries = []
    for suffix, label, audio, rate in decoded:
        entries += [write_clip(out, name + suffix, normalize(clip, data_params).numpy(), rate,
                               title + (f" → {label}" if label else ""))
                    for name, title, clip in zip(names, titles, audio)]
    return entries


DIGIT_STEPS = 12         # DDIM: guidance doubles each step; 50 took the demo past 60 s (10/10 at 12)


def digits_section(run, out, seed):
    """One class-conditional clip (1 s) per digit, from any class-conditional model."""
    from diffusion import Pipeline
    pipe = Pipeline.from_pretrained(run)
    if not pipe.accepts.num_classes:
        raise ValueError(f"{run}: not a class-conditional run")
    steps = {"steps": DIGIT_STEPS} if pipe.accepts.default_sampler == "ddim" else {}
    decoded = _decoded(pipe, _vocoder_beside(run, pipe), num=10, seconds=1.0, seed=seed,
                       label=list(range(10)), **steps)
    return "Class-conditional digits, one per class", _write_decoded(
        out, decoded, [f"digit_{d}_{DIGITS[d]}" for d in range(10)],
        [f"generated: '{DIGITS[d]}'" for d in range(10)], pipe.params.data)


def chorales_section(run, out, seed):
    """Two generated chorale excerpts and a variation of a held-out chorale (DDIM from its mel
    image at strength 0.5, teticio's variations)."""
    from data.sources import find_sources
    from diffusion import Pipeline
    pipe = Pipeline.from_pretrained(run)
    if pipe.accepts.kind != "mel-unet" or pipe.accepts.num_classes:
        raise ValueError(f"{run}: chorales/ holds an unconditional mel-UNet run")
    vocoder = _vocoder_beside(run, pipe)
    source = find_sources(str(HELDOUT_CHORALES)).sources[0]
    name = Path(source.path).stem
    return "Chorales", (
        _write_decoded(out, _decoded(pipe, vocoder, num=2, seconds=CHORALE_SECONDS, seed=seed),
                       ["chorale_0", "chorale_1"],
                       ["generated chorale excerpt 0", "generated chorale excerpt 1"],
                       pipe.params.data)
        + _write_decoded(out, _decoded(pipe, vocoder, num=1, seconds=CHORALE_SECONDS, seed=seed,
                                       from_audio=source.path, strength=0.5),
                         [f"{name}_variation"],
                         [f"variation of {name} (held out), strength 0.5"], pipe.params.data))


SECTIONS = {"vocoder": vocoder_section, "digits": digits_section,
            "chorales": chorales_section}


def write_page(out, sections, seconds) -> str:
    """OUT/index.html: one table row per clip, an <audio> player beside its figure."""
    rows = []
    for heading, entries in sections:
        rows.append(f"<h2>{html.escape(heading)}</h2>\n<table>")
        rows += [f'<tr><td>{html.escape(e["title"])}<br><audio controls preload="none" '
                 f'src="{html.escape(e["wav"])}"></audio></td><td><img src="'
                 f'{html.escape(e["png"])}" width="560" alt="{html.escape(e["title"])}"></td></tr>'
                 for e in entries]
        rows.append("</table>")
    page = ("<!doctype html>\n<html><head><meta charset='utf-8'><title>audio-diffusion demo"
            "</title><style>body{font-family:sans-serif;margin:2em}td{padding:4px 12px;"
            "vertical-align:middle}</style></head><body>\n<h1>Pretrained models</h1>\n"
            f"<p>Made by <code>make demo</code> in {seconds:.0f} s, no training.</p>\n"
            + "\n".join(rows) + "\n</body></html>\n")
    path = os.path.join(out, "index.html")
    with open(path, "w") as f:
        f.write(page)
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_tensorflow()
    from diffusion.families.registry import RunError
    start = time.perf_counter()
    sections = []
    for name, section in SECTIONS.items():
        run = os.path.join(args.pretrained, name)
        if not os.path.isfile(os.path.join(run, "params.json")):
            print(f"skipped {name}: {run} is not there yet")
            continue
        try:
            heading, entries = section(run, os.path.join(args.out, name), args.seed)
        except (RunError, ValueError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        sections.append((heading, entries))
        print(f"{name}: {len(entries)} clips in {time.perf_counter() - start:.1f} s")
    if not sections:
        print(f"error: no pretrained model under {args.pretrained}", file=sys.stderr)
        return 2
    page = write_page(args.out, sections, time.perf_counter() - start)
    print(f"wrote {page} ({sum(len(e) for _, e in sections)} clips, "
          f"{time.perf_counter() - start:.1f} s); open it in a browser")
    return 0


if __name__ == "__main__":
    sys.exit(main())
