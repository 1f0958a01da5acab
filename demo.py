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
    from diffusion.families.registry import load_run
    from evaluation.vocoder import GRIFFIN_LIM_ITERATIONS, heldout_clips, vocoded_versions
    import numpy as np
    params, family, model = load_run(run)
    rate = params.data.sample_rate
    clips = heldout_clips(HELDOUT, params)
    digits = {}
    for name, audio, label in clips:
        if label >= 0 and label % 2 == 0 and label not in digits:   # five words: < 60 s
            digits[label] = (name, audio)
    chorale = next((name, audio) for name, audio, label in clips if label < 0)
    hop = params.network.hop_length
    chorale = (chorale[0], chorale[1][:int(CHORALE_SECONDS * rate) // hop * hop])
    entries = []
    batches = [[digits[k] for k in sorted(digits)], [chorale]]
    for batch in batches:
        versions = vocoded_versions(family, model, np.stack([a for _, a in batch]), seed,
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


def _decoders(run, params, family):
    """[(suffix, label, decode(x, seed) → audio [N, T], rate)]: the family's own inversion
    (Griffin-Lim for a mel-UNet), then for a mel-UNet the pretrained vocoder beside `run` when
    its Mel matches, so the page plays both (the README's quality table says which is better)."""
    from diffusion.families.mel.vocoder import load_vocoder, run_vocoder
    own = [("", "Griffin-Lim" if family.makes_images else "",
            lambda x, seed: family.to_audio(x)[0], params.data.sample_rate)]
    vocoder_run = os.path.join(os.path.dirname(os.path.normpath(run)), "vocoder")
    if not family.makes_images or not os.path.isfile(os.path.join(vocoder_run, "params.json")):
        return own
    try:
        vocoder = load_vocoder(vocoder_run, params, family)
    except ValueError as e:
        print(f"note: {e}; Griffin-Lim only")
        return own
    return own + [("_vocoder", "vocoder",
                   lambda x, seed: run_vocoder(vocoder, family.to_images(x), family.mel,
                                               seed=seed), vocoder[0].data.sample_rate)]


def _write_decoded(out, decoders, x, seed, names, titles, data_params):
    """Each sample of x through each decoder: OUT/<name><suffix>.wav/.png, titled, levelled as
    the training data was (a mel image's dB are relative to its loudest bin: no level of its
    own)."""
    from data.pipeline import normalize
    entries = []
    for suffix, label, decode, rate in decoders:
        audio = decode(x, seed)
        entries += [write_clip(out, name + suffix, normalize(clip, data_params).numpy(), rate,
                               title + (f" → {label}" if label else ""))
                    for name, title, clip in zip(names, titles, audio)]
    return entries


DIGIT_STEPS = 12         # DDIM: guidance doubles each step; 50 took the demo past 60 s (10/10 at 12)


def digits_section(run, out, seed):
    """One class-conditional clip (1 s) per digit, from any class-conditional family."""
    from diffusion.families.registry import load_run
    params, family, model = load_run(run)
    if family.conditioning != "class":
        raise ValueError(f"{run}: not a class-conditional run")
    scheduler = family.scheduler(family.default_sampler, DIGIT_STEPS)
    cond = family.class_condition(list(range(10)))
    x = family.sample(model, scheduler, family.sample_shape(10, 1.0, cond), cond, seed)
    return "Class-conditional digits, one per class", _write_decoded(
        out, _decoders(run, params, family), x.numpy(), seed,
        [f"digit_{d}_{DIGITS[d]}" for d in range(10)],
        [f"generated: '{DIGITS[d]}'" for d in range(10)], params.data)


def chorales_section(run, out, seed):
    """Two generated chorale excerpts and a variation of a held-out chorale (DDIM from its mel
    image at strength 0.5, teticio's variations)."""
    import numpy as np

    from data.features import read_mono
    from data.sources import find_sources
    from diffusion.families.registry import load_run
    params, family, model = load_run(run)
    if not family.makes_images or family.conditioning != "none":
        raise ValueError(f"{run}: chorales/ holds an unconditional mel-UNet run")
    scheduler = family.scheduler(family.default_sampler)
    x = family.sample(model, scheduler, family.sample_shape(2, CHORALE_SECONDS), {}, seed)
    source = find_sources(str(HELDOUT_CHORALES)).sources[0]
    init = family.from_audio(read_mono(source.path, params.data.sample_rate), 1)
    v = family.sample(model, scheduler, list(init.shape), {}, seed, init=init, strength=0.5)
    name = Path(source.path).stem
    decoders = _decoders(run, params, family)
    return "Chorales", (
        _write_decoded(out, decoders, x.numpy(), seed, ["chorale_0", "chorale_1"],
                       ["generated chorale excerpt 0", "generated chorale excerpt 1"],
                       params.data)
        + _write_decoded(out, decoders, np.asarray(v), seed, [f"{name}_variation"],
                         [f"variation of {name} (held out), strength 0.5"], params.data))


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
