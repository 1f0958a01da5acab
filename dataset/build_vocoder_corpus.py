#!/usr/bin/env python3
"""The vocoder's speech-and-music corpus (issue #27), built offline into the cache, never
committed:

    .venv/bin/python dataset/build_vocoder_corpus.py [--out dataset/cache/vocoder] [--scale 1]

Natural and synthetic voices reading many English sentences, recorded voices that Debian ships,
and real and rendered music, at 16 kHz, split BY VOICE so that validation and test voices are
never trained on:

| source | train | valid (choices) | test (reported only) |
| --- | --- | --- | --- |
| Kokoro-82M (neural, real speakers) | jf_alpha, jf_gongitsune, jm_kumo, blends, ×0.8–1.25 | jf_nezumi | jf_tebukuro |
| espeak-ng (8 accents × ~100 variants) | all | | |
| festival (kal, ked, slt) | | all (engine held out) | |
| flite (kal16, awb, rms, slt) | | | all (engine held out) |
| Hedgewars voice packs (recorded actors, GFDL-1.3) | 11 packs | Pirate, Default_pl | British, Default_uk |
| Asterisk prompts (Allison Smith, studio, CC-BY-SA-3.0) | | | digits 0-9 + prompts |
| music: Bach chorales (SoundFont), Sonic Pi samples (CC0/MIT) | chorale train split, most samples | 6 samples | chorale held-out split |

Sentences come from the fortune-mod corpus (public domain quotations and riddles); Kokoro reads
them from espeak-ng's US-English IPA mapped to Kokoro's phoneme alphabet. Synthetic clips get a
light noise floor (-80..-50 dB re peak) so that exact digital silence is not all the model
hears. Digit clips (valid, test) carry a label so the reports score them with the digit scorers.

Writes OUT/{train,valid,test}.jsonl (path, split, source, voice, speaker, label, caption, licence,
sample_rate, num_samples) and OUT/build.json with the seconds per source and split.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True
sys.path.insert(0, str(HERE))
from build_common import (  # noqa: E402
    BuildError,
    fade,
    peak_normalise,
    resample,
    write_flac,
    write_jsonl,
)
from build_digits import ESPEAK_ACCENTS, WORDS, trim  # noqa: E402
from build_kokoro import PHONEMES, Kokoro  # noqa: E402
from build_voices import FESTIVAL_VOICES, FLITE_VOICES, espeak_variants  # noqa: E402

RATE = 16000
FORTUNES = Path("/usr/share/games/fortunes")
HEDGEWARS = Path("/usr/share/games/hedgewars/Data/Sounds/voices")
ALLISON = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
SONIC_PI = Path("/usr/share/sonic-pi/samples")
KOKORO_SPLIT = {"jf_nezumi": "valid", "jf_tebukuro": "test"}         # the rest train
HEDGEWARS_SPLIT = {"Pirate": "valid", "Default_pl": "valid", "British": "test",
                   "Default_uk": "test"}
LICENCES = {"kokoro": "Kokoro-82M output (model Apache-2.0)",
            "espeak-ng": "espeak-ng output (not covered by the program's GPL)",
            "festival": "festival output; CMU voices BSD-style",
            "flite": "flite output; CMU voices BSD-style",
            "hedgewars": "Hedgewars voice packs, GFDL-1.3 (Debian hedgewars-data)",
            "asterisk": "Asterisk core sounds by Allison Smith, CC-BY-SA-3.0",
            "sonic-pi": "Sonic Pi samples, CC0 or MIT (Debian sonic-pi-samples)",
            "chorales": "see dataset/chorales (public-domain score, MIT SoundFont)"}
PACKAGES = "espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts " \
           "hedgewars-data asterisk-core-sounds-en-g722 sonic-pi-samples fortune-mod " \
           "fortunes-min ffmpeg"
# US-English IPA (espeak-ng --ipa) → Kokoro's misaki alphabet (diphthongs as one letter).
MISAKI = (("dʒ", "ʤ"), ("tʃ", "ʧ"), ("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("ɔɪ", "Y"),
          ("oʊ", "O"), ("əʊ", "Q"), ("ɜː", "ɜɹ"), ("ɾ", "T"), ("ː", ""), ("r", "ɹ"))


def sentences(seed: int) -> list[str]:
    """Plain sentences of 4–25 words from the fortune files, shuffled."""
    out = []
    for name in ("fortunes", "literature", "riddles"):
        text = (FORTUNES / name).read_text(encoding="utf-8", errors="ignore")
        for entry in text.split("\n%\n"):
            entry = re.sub(r"\s+", " ", entry.split(" -- ")[0]).strip()
            for s in re.split(r"(?<=[.!?])\s+", entry):
                s = re.sub(r"^[QA]: ", "", s)
                if 4 <= len(s.split()) <= 25 and re.fullmatch(r"[A-Z][A-Za-z0-9 ,.;:'!?\-\"]+", s):
                    out.append(s.replace('"', ""))
    if len(out) < 200:
        raise BuildError(f"only {len(out)} sentences in {FORTUNES}; apt-get install fortunes-min")
    np.random.default_rng([seed, 1]).shuffle(out)
    return out


def ipa(text: str) -> str:
    return subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "en-us", text], capture_output=True,
                          text=True, check=True).stdout.replace("\n", " ").strip()


def level(x: np.ndarray, rng, noise: bool) -> np.ndarray:
    """Trim, fade, a random peak level; synthetic clips get a light noise floor."""
    x = fade(trim(x), 5.0)
    x = peak_normalise(x, rng.uniform(-12.0, -1.0))
    pad = np.zeros(int(rng.integers(800, 4000)))
    x = np.concatenate([pad, x, pad[: int(rng.integers(800, 4000))]])
    if noise and rng.random() < 0.7:
        x = x + rng.standard_normal(len(x)) * np.abs(x).max() * 10 ** (rng.uniform(-80, -50) / 20)
    return np.clip(x, -1.0, 1.0)


def kokoro_jobs(seed: int, seconds: dict[str, float], texts: dict[str, list[str]]):
    """(row, audio 16 kHz): sentences by voice up to each split's seconds, then 3 digits
    per held-out voice and digit (labelled)."""
    kokoro = Kokoro(str(HERE / "cache" / "kokoro"))
    names = list(kokoro.voices)
    rng = np.random.default_rng([seed, 2])
    train = [n for n in names if n not in KOKORO_SPLIT]
    for split in ("train", "valid", "test"):
        voices = train if split == "train" else [n for n, s in KOKORO_SPLIT.items() if s == split]
        done, k = 0.0, 0
        while done < seconds[split]:
            name = voices[k % len(voices)]
            text = texts[split][int(rng.integers(len(texts[split])))]
            phonemes = "".join(c for c in _misaki(ipa(text)) if c in kokoro.vocab)[:400]
            yield _kokoro_row(kokoro, rng, name, voices, phonemes, split, text, None)
            done += len(phonemes) / 15.0      # ≈ phonemes per second: a cheap budget
            k += 1
        if split != "train":
            for label in range(10):
                for _ in range(3):
                    yield _kokoro_row(kokoro, rng, voices[0], voices, PHONEMES[label], split,
                                      WORDS[label], label)


def _misaki(text: str) -> str:
    for a, b in MISAKI:
        text = text.replace(a, b)
    return text


def _kokoro_row(kokoro, rng, name, voices, phonemes, split, text, label):
    other = voices[int(rng.integers(len(voices)))]
    weight = rng.uniform(0.1, 0.5) if rng.random() < 0.5 and other != name else 0.0
    row = min(len(phonemes) - 1, 509)
    style = (1 - weight) * kokoro.voices[name][row] + weight * kokoro.voices[other][row]
    speed = float(rng.uniform(0.8, 1.25))
    audio = resample(kokoro.say(phonemes, style, speed), 24000)
    voice = f"kokoro:{name}" + (f"+{other}" if weight else "")
    return dict(split=split, source="kokoro", voice=voice, speaker=name, label=label,
                caption=text, settings=f"speed {speed:.2f}, {weight:.2f} of {other}"), audio


def engine_jobs(seed: int, engine: str, split: str, seconds: float, texts: list[str], tmp: Path):
    """espeak-ng / flite / festival reading sentences, then (held-out engines) 3 digits per
    digit and voice family: [(row, command or festival script lines, wav path)]."""
    rng = np.random.default_rng([seed, 3, len(engine)])
    variants = espeak_variants() if engine == "espeak-ng" else []
    items = [(texts[int(rng.integers(len(texts)))], None)
             for _ in range(int(seconds / 3.5))]                     # ≈ 3.5 s a sentence
    if split != "train":
        items += [(WORDS[d], d) for d in range(10) for _ in range(3)]
    jobs = []
    for i, (text, label) in enumerate(items):
        wav = tmp / f"{engine}_{i}.wav"
        if engine == "espeak-ng":
            accent = list(ESPEAK_ACCENTS)[int(rng.integers(len(ESPEAK_ACCENTS)))]
            voice = f"{accent}+{rng.choice(variants)}"
            cmd = ["espeak-ng", "-v", voice, "-s", str(int(rng.integers(120, 240))),
                   "-p", str(int(rng.integers(10, 90))), "-w", str(wav), text]
        elif engine == "flite":
            voice = list(FLITE_VOICES)[int(rng.integers(len(FLITE_VOICES)))]
            f0 = FLITE_VOICES[voice][1]
            cmd = ["flite", "-voice", voice, "-t", text, "-o", str(wav), "--setf",
                   f"duration_stretch={rng.uniform(0.8, 1.3):.2f}", "--setf",
                   f"int_f0_target_mean={int(rng.integers(*f0))}"]
        else:
            voice = list(FESTIVAL_VOICES)[int(rng.integers(len(FESTIVAL_VOICES)))]
            cmd = [f"({FESTIVAL_VOICES[voice][0]})",
                   f"(Parameter.set 'Duration_Stretch {rng.uniform(0.8, 1.3):.2f})",
                   f"(utt.save.wave (utt.synth (Utterance Text \"{text}\")) \"{wav}\" 'riff)"]
        jobs.append((dict(split=split, source=engine, voice=f"{engine}:{voice}",
                          speaker=voice.split("+")[0], label=label, caption=text,
                          settings=" ".join(cmd) if engine != "festival" else cmd[1]), cmd, wav))
    return jobs


def run_engine_jobs(jobs, workers: int = 2):
    festival = [j for j in jobs if j[0]["source"] == "festival"]
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(subprocess.run, cmd, capture_output=True, timeout=120)
                   for row, cmd, _ in jobs if row["source"] != "festival"]
        if festival:
            script = Path(festival[0][2]).parent / "festival.scm"
            script.write_text("\n".join(line for _, cmd, _ in festival for line in cmd) + "\n")
            futures.append(pool.submit(subprocess.run, ["festival", "-b", str(script)],
                                       capture_output=True, timeout=3600))
        for f in futures:
            f.result()
    for row, _, wav in jobs:
        if wav.exists():
            x, rate = sf.read(wav, dtype="float64")
            yield row, resample(x if x.ndim == 1 else x.mean(axis=1), rate)


def recorded_jobs(seed: int):
    """Hedgewars voice packs, Allison's digits and prompts (test), Sonic Pi samples."""
    rng = np.random.default_rng([seed, 4])
    for pack in sorted(p for p in HEDGEWARS.iterdir() if p.is_dir()):
        split = HEDGEWARS_SPLIT.get(pack.name, "train")
        for f in sorted(pack.glob("*.ogg")):
            x, rate = sf.read(f, dtype="float64")
            yield dict(split=split, source="hedgewars", voice=f"hedgewars:{pack.name}",
                       speaker=pack.name, label=None, caption=f.stem), resample(x.mean(axis=1)
                                                                                 if x.ndim > 1 else x, rate)
    prompts = sorted(ALLISON.glob("*.g722"))
    chosen = [ALLISON / "digits" / f"{d}.g722" for d in range(10)]
    chosen += [prompts[i] for i in rng.choice(len(prompts), 30, replace=False)]
    for f in chosen:
        label = int(f.stem) if f.parent.name == "digits" else None
        yield dict(split="test", source="asterisk", voice="asterisk:allison", speaker="allison",
                   label=label, caption=WORDS[label] if label is not None else f.stem), _g722(f)
    samples = sorted(SONIC_PI.glob("*.flac"))
    valid = set(rng.choice(len(samples), 6, replace=False).tolist())
    for i, f in enumerate(samples):
        x, rate = sf.read(f, dtype="float64")
        x = resample(x.mean(axis=1) if x.ndim > 1 else x, rate)[: 6 * RATE]
        yield dict(split="valid" if i in valid else "train", source="sonic-pi",
                   voice="music", speaker="music", label=None, caption=f.stem), x


def _g722(path: Path) -> np.ndarray:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "g722", "-i",
                          str(path), "-f", "s16le", "-ac", "1", "-ar", str(RATE), "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, np.int16).astype(np.float64) / 32768.0


def chorale_rows() -> list[dict]:
    """The bundled chorales, by their existing split (train → train, held-out → test)."""
    rows = []
    for name, split in (("train-chorales", "train"), ("heldout-chorales", "test")):
        for line in open(HERE / "splits" / f"{name}.jsonl", encoding="utf-8"):
            r = json.loads(line)
            path = (HERE / "splits" / r["path"]).resolve()
            rows.append(dict(path=str(path), split=split, source="chorales", voice="music",
                             speaker="music", label=None, caption=r["caption"],
                             licence=LICENCES["chorales"], sample_rate=RATE,
                             num_samples=r["num_samples"]))
    return rows


def report_subset(rows: list[dict], per_voice: int = 5) -> list[dict]:
    """The rows a vocoder report samples in minutes: every labelled digit, and the first
    `per_voice` unlabelled clips of each voice (sentences, prompts, music)."""
    seen: dict[str, int] = {}
    keep = []
    for row in rows:
        voice = row["voice"].split("+")[0]
        if row["label"] is None:
            seen[voice] = seen.get(voice, 0) + 1
            if seen[voice] > per_voice:
                continue
        keep.append(row)
    return keep


def build(out: Path, seed: int = 0, scale: float = 1.0, kokoro_seconds: float = 300.0) -> dict:
    for path, pkg in ((FORTUNES, "fortunes-min"), (HEDGEWARS, "hedgewars-data"),
                      (ALLISON, "asterisk-core-sounds-en-g722"), (SONIC_PI, "sonic-pi-samples")):
        if not path.exists():
            raise BuildError(f"{path} missing: apt-get install {PACKAGES}")
    start = time.perf_counter()
    texts = sentences(seed)
    valid_texts, test_texts, train_texts = texts[:100], texts[100:200], texts[200:]
    rows = {s: [] for s in ("train", "valid", "test")}
    counter = [0]

    def add(row, audio, noise):
        rng = np.random.default_rng([seed, 5, counter[0]])
        if audio.size < RATE // 10 or not np.any(audio):
            return
        x = level(audio, rng, noise)
        path = out / row["split"] / f"{counter[0]:05d}_{row['source']}.flac"
        write_flac(path, x)
        row.update(path=str(path.relative_to(out)), licence=LICENCES[row["source"]],
                   sample_rate=RATE, num_samples=len(x))
        rows[row["split"]].append(row)
        counter[0] += 1

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        jobs = (engine_jobs(seed, "espeak-ng", "train", 900 * scale, train_texts, tmp)
                + engine_jobs(seed, "festival", "valid", 60, valid_texts, tmp)
                + engine_jobs(seed, "flite", "test", 60, test_texts, tmp))
        for row, audio in run_engine_jobs(jobs):
            add(row, audio, noise=True)
    for row, audio in recorded_jobs(seed):
        add(row, audio, noise=False)
    texts = {"train": train_texts, "valid": valid_texts, "test": test_texts}
    budget = {"train": kokoro_seconds * scale, "valid": 60, "test": 60}
    for row, audio in kokoro_jobs(seed, budget, texts):
        add(row, audio, noise=True)
    for row in chorale_rows():
        row["path"] = os.path.relpath(row["path"], out.resolve())
        rows[row["split"]].append(row)
    summary = {"seed": seed, "scale": scale, "kokoro_seconds": kokoro_seconds,
               "seconds_to_build": round(time.perf_counter()
                                                                       - start, 1)}
    for split in ("valid", "test"):          # what the reports and the learning curve sample
        write_jsonl(out / f"{split}-report.jsonl", report_subset(rows[split]))
    for split, split_rows in rows.items():
        write_jsonl(out / f"{split}.jsonl", split_rows)
        per = {}
        for r in split_rows:
            per[r["source"]] = per.get(r["source"], 0) + r["num_samples"] / RATE
        summary[split] = {k: round(v, 1) for k, v in sorted(per.items())}
        summary[split]["labelled clips"] = sum(r["label"] is not None for r in split_rows)
        summary[split]["voices"] = sorted({r["voice"].split("+")[0] for r in split_rows})
    (out / "build.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(HERE / "cache" / "vocoder"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=1.0,
                   help="× the synthetic training speech (espeak-ng 900 s, Kokoro below)")
    p.add_argument("--kokoro-seconds", type=float, default=300.0,
                   help="Kokoro training speech in seconds (~1× real time to synthesise on 2 "
                        "cores)")
    args = p.parse_args(argv)
    try:
        summary = build(Path(args.out), args.seed, args.scale, args.kokoro_seconds)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
