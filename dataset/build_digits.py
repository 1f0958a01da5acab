"""Spoken digits "zero".."nine", one second each, from espeak-ng, flite and festival.

Every clip: render one word with one voice at a chosen speed and pitch, trim the
silence around it, place it at a random offset inside one second, scale it to a
random peak level and add light white or pink noise so that silence is never
exact zeros.  All random choices come from generators seeded by (seed, digit, index).
"""

from __future__ import annotations

import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from build_common import (
    SAMPLE_RATE,
    BuildError,
    db_to_amp,
    fade,
    peak_normalise,
    require_program,
    resample,
    write_flac,
)

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MARGIN = int(0.03 * SAMPLE_RATE)          # word never starts or ends within 30 ms of an edge
MAX_WORD = SAMPLE_RATE - 2 * MARGIN
PEAK_DB = (-18.0, -2.0)                   # peak level of the word
NOISE_DB = (-66.0, -54.0)                 # RMS level of the added noise

ESPEAK_ACCENTS = {                        # espeak-ng voice -> accent phrase for captions
    "en-us": "an American English", "en-gb": "a British English",
    "en-gb-scotland": "a Scottish English", "en-gb-x-rp": "a British Received Pronunciation",
    "en-029": "a Caribbean English", "en-gb-x-gbclan": "a Lancashire English",
    "en-gb-x-gbcwmd": "a West Midlands English", "en-us-nyc": "a New York City English",
}
ESPEAK_MALE = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "klatt", "klatt2", "klatt3")
ESPEAK_FEMALE = ("f1", "f2", "f3", "f4", "f5")
ESPEAK_LICENCE = ("synthesised with espeak-ng 1.51 (program and voice data GPL-3.0-or-later); "
                  "the output audio is not covered by the program's GPL")
FLITE_LICENCE = ("synthesised with CMU flite 2.2 (BSD-style CMU licence; voices from CMU, "
                 "BSD-style); the output audio carries no licence restriction from the program")
FESTIVAL_LICENCE = ("synthesised with the Festival Speech Synthesis System 2.5 (BSD-style CSTR "
                    "licence; voice {voice}: BSD-style CSTR/CMU licence); the output audio carries "
                    "no licence restriction from the program")


@dataclass(frozen=True)
class Voice:
    synth: str           # "espeak-ng" | "flite" | "festival"
    name: str            # flite voice, festival voice function, or "espeak" placeholder
    gender: str
    accent: str          # phrase with article, e.g. "an American English"
    f0: tuple | None     # (low, high) mean-F0 range in Hz, None when not controllable
    quality: str = ""    # extra caption word, e.g. "narrow-band"


FLITE = {
    "kal16": Voice("flite", "kal16", "male", "an American English", (85, 140)),
    "kal": Voice("flite", "kal", "male", "an American English", (85, 140), "narrow-band"),
    "awb": Voice("flite", "awb", "male", "a Scottish English", (80, 130)),
    "rms": Voice("flite", "rms", "male", "an American English", None),
    "slt": Voice("flite", "slt", "female", "an American English", (150, 220)),
}
FESTIVAL = {
    "kal": Voice("festival", "voice_kal_diphone", "male", "an American English", (90, 140)),
    "ked": Voice("festival", "voice_ked_diphone", "male", "an American English", (85, 130)),
    "slt": Voice("festival", "voice_cmu_us_slt_arctic_hts", "female", "an American English", None),
}
# Share of each voice among a digit's clips (per 40): half espeak-ng, 30 % flite, 20 % festival.
SLOT_WEIGHTS = {"espeak": 20, "flite:kal16": 3, "flite:awb": 3, "flite:rms": 2, "flite:slt": 3,
                "flite:kal": 1, "festival:kal": 3, "festival:ked": 2, "festival:slt": 3}


def slots_for(per_digit: int) -> list[str]:
    """Split per_digit clips between the voices in proportion to SLOT_WEIGHTS (largest remainder)."""
    total = sum(SLOT_WEIGHTS.values())
    exact = {k: w * per_digit / total for k, w in SLOT_WEIGHTS.items()}
    counts = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: counts[k] - exact[k])[: per_digit - sum(counts.values())]:
        counts[k] += 1
    return [k for k, n in counts.items() for _ in range(n)]


@dataclass
class Job:
    digit: int
    index: int
    voice: Voice
    espeak_voice: str = ""     # e.g. "en-gb-scotland+m3"
    rate: float = 1.0          # espeak: words per minute; flite/festival: speed factor (>1 faster)
    pitch: float | None = None  # espeak: 0-99; flite/festival: mean F0 in Hz


def plan_jobs(seed: int, per_digit: int) -> list[Job]:
    accents = list(ESPEAK_ACCENTS)
    slots = slots_for(per_digit)
    jobs = []
    for digit in range(10):
        order = np.random.default_rng([seed, 10, digit]).permutation(len(slots))
        n_espeak = 0
        for index in range(per_digit):
            slot = slots[order[index]]
            rng = np.random.default_rng([seed, 11, digit, index])
            if slot == "espeak":
                accent = accents[(n_espeak + digit) % len(accents)]   # spread accents evenly
                n_espeak += 1
                female = rng.random() < 0.4
                variant = rng.choice(ESPEAK_FEMALE if female else ESPEAK_MALE)
                voice = Voice("espeak-ng", "espeak", "female" if female else "male",
                              ESPEAK_ACCENTS[accent], (10, 90))
                jobs.append(Job(digit, index, voice, f"{accent}+{variant}",
                                rate=float(rng.integers(120, 261)), pitch=float(rng.integers(10, 91))))
            else:
                synth, key = slot.split(":")
                voice = (FLITE if synth == "flite" else FESTIVAL)[key]
                pitch = float(rng.integers(*voice.f0)) if voice.f0 else None
                jobs.append(Job(digit, index, voice, rate=round(float(rng.uniform(0.75, 1.3)), 2),
                                pitch=pitch))
    return jobs


def synthesise(job: Job, word: str, tmp: Path) -> tuple[np.ndarray, int]:
    """Run the synthesiser; return (float waveform, sample rate)."""
    wav = tmp / f"{job.digit}_{job.index}.wav"
    v = job.voice
    if v.synth == "espeak-ng":
        cmd = ["espeak-ng", "-v", job.espeak_voice, "-s", str(int(job.rate)),
               "-p", str(int(job.pitch)), "-w", str(wav), word]
    elif v.synth == "flite":
        cmd = ["flite", "-voice", v.name, "-t", word, "-o", str(wav),
               "--setf", f"duration_stretch={1.0 / job.rate:.3f}"]
        if job.pitch is not None:
            cmd += ["--setf", f"int_f0_target_mean={job.pitch:.0f}"]
    else:
        evals = [f"({v.name})"]
        if v.name.endswith("_hts"):      # HTS engine: -r is the speaking-rate factor
            evals.append(f"(set! hts_engine_params (append hts_engine_params '((\"-r\" {job.rate}))))")
        else:
            evals.append(f"(Parameter.set 'Duration_Stretch {1.0 / job.rate:.3f})")
        if job.pitch is not None:
            evals.append(f"(set! int_lr_params '((target_f0_mean {job.pitch:.0f}) (target_f0_std 14)"
                         " (model_f0_mean 170) (model_f0_std 34)))")
        cmd = ["text2wave", "-o", str(wav)] + [a for e in evals for a in ("-eval", e)]
    proc = subprocess.run(cmd, input=word + "\n", capture_output=True, text=True, timeout=60)
    if proc.returncode != 0 or not wav.exists():
        raise BuildError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[:300]}")
    x, sr = sf.read(wav, dtype="float64")
    wav.unlink()
    return (x if x.ndim == 1 else x.mean(axis=1)), sr


def trim(x: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing parts whose 10 ms RMS is `floor_db` below the loudest 10 ms."""
    win = int(0.01 * SAMPLE_RATE)
    env = np.sqrt(np.convolve(x * x, np.ones(win) / win, mode="same"))
    loud = np.flatnonzero(env > env.max() * db_to_amp(floor_db))
    return x[loud[0]: loud[-1] + 1]


def pink_noise(rng, n: int, corner_hz: float = 20.0) -> np.ndarray:
    """1/f noise (flat below corner_hz, no DC)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    spec *= 1.0 / np.sqrt(np.maximum(freqs, corner_hz) / corner_hz)
    spec[0] = 0.0
    return np.fft.irfft(spec, n)


def describe(job: Job) -> tuple[str, str]:
    """Caption words for speed and pitch, derived from the chosen parameters."""
    if job.voice.synth == "espeak-ng":
        speed = "slow" if job.rate < 155 else "fast" if job.rate > 215 else "medium speed"
    else:
        speed = "slow" if job.rate < 0.9 else "fast" if job.rate > 1.15 else "medium speed"
    pitch = ""
    if job.pitch is not None:
        lo, hi = job.voice.f0
        third = (hi - lo) / 3
        pitch = "low-pitched " if job.pitch < lo + third else "high-pitched " if job.pitch > hi - third else ""
    return speed, pitch


def make_clip(job: Job, seed: int, tmp: Path) -> dict | None:
    """Render, trim, place and noise one clip. Returns audio + facts, or None if too long."""
    word = WORDS[job.digit]
    for _ in range(4):                   # speed up (and retry) if the word does not fit
        x, sr = synthesise(job, word, tmp)
        if not np.any(x):
            raise BuildError(f"{job.voice.synth} produced silence for {word!r}")
        x = trim(resample(x, sr))
        if len(x) <= MAX_WORD:
            break
        job.rate = round(job.rate * 1.2, 2) if job.voice.synth != "espeak-ng" else min(job.rate * 1.2, 400)
    else:
        return None
    rng = np.random.default_rng([seed, 12, job.digit, job.index])
    peak_db = float(rng.uniform(*PEAK_DB))
    word_audio = peak_normalise(fade(x, 5.0), peak_db)
    offset = int(rng.integers(MARGIN, SAMPLE_RATE - MARGIN - len(x) + 1))
    noise_kind = "pink" if rng.random() < 0.6 else "white"
    noise = pink_noise(rng, SAMPLE_RATE) if noise_kind == "pink" else rng.standard_normal(SAMPLE_RATE)
    noise_db = min(float(rng.uniform(*NOISE_DB)), peak_db - 40.0)   # keep the noise light
    audio = noise * (db_to_amp(noise_db) / np.sqrt(np.mean(noise ** 2)))
    audio[offset: offset + len(x)] += word_audio
    return {"audio": audio, "offset": offset, "length": len(x), "peak_db": peak_db,
            "noise": noise_kind, "noise_db": noise_db}


def metadata(job: Job, name: str, clip: dict) -> dict:
    v = job.voice
    speed, pitch = describe(job)
    quality = f"{v.quality} " if v.quality else ""
    word = WORDS[job.digit]
    if v.synth == "espeak-ng":
        source = f"espeak-ng {job.espeak_voice}, {int(job.rate)} wpm, pitch {int(job.pitch)}"
        licence = ESPEAK_LICENCE
    else:
        source = f"{v.synth} {v.name}, speed x{job.rate:.2f}"
        if job.pitch is not None:
            source += f", mean F0 {job.pitch:.0f} Hz"
        licence = FLITE_LICENCE if v.synth == "flite" else FESTIVAL_LICENCE.format(voice=v.name.removeprefix("voice_"))
    return {
        "path": name,
        "label": job.digit,
        "label_name": word,
        "caption": (f"the word {word} spoken by a {pitch}{quality}synthetic {v.gender} voice "
                    f"with {v.accent} accent, {speed}"),
        "licence": licence,
        "source": source,
        "sample_rate": SAMPLE_RATE,
        "num_samples": len(clip["audio"]),
        "synth": v.synth,
        "word_onset_s": round(clip["offset"] / SAMPLE_RATE, 4),
        "word_duration_s": round(clip["length"] / SAMPLE_RATE, 4),
        "noise": f"{clip['noise']} {clip['noise_db']:.1f} dBFS",
    }


def check_voices() -> None:
    """Fail early, with a clear message, if a program or voice is missing (the programs
    themselves silently fall back to a default voice)."""
    require_program("espeak-ng", "espeak-ng")
    require_program("flite", "flite")
    require_program("text2wave", "festival")

    def listing(*cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    langs = {line.split()[1] for line in listing("espeak-ng", "--voices=en").splitlines()[1:]}
    variants = {line.split()[4].split("/")[-1] for line in listing("espeak-ng", "--voices=variant").splitlines()[1:]}
    missing = (set(ESPEAK_ACCENTS) - langs) | (set(ESPEAK_MALE + ESPEAK_FEMALE) - variants)
    if missing:
        raise BuildError(f"espeak-ng lacks voices {sorted(missing)}; apt-get install espeak-ng")
    flite_voices = set(listing("flite", "-lv").split(":")[-1].split())
    if set(FLITE) - flite_voices:
        raise BuildError(f"flite lacks voices {sorted(set(FLITE) - flite_voices)}; apt-get install flite")
    voice_dirs = {p.name for p in Path("/usr/share/festival/voices").glob("*/*")}
    for v in FESTIVAL.values():
        name = v.name.removeprefix("voice_")
        if name not in voice_dirs:
            raise BuildError(f"festival voice {name} missing; apt-get install festvox-kallpc16k "
                             "festvox-kdlpc16k festvox-us-slt-hts")


def build(out_dir: Path, seed: int, per_digit: int = 33, workers: int = 2) -> list[dict]:
    check_voices()
    jobs = plan_jobs(seed, per_digit)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(workers) as pool:
        clips = pool.map(lambda j: make_clip(j, seed, Path(tmp)), jobs)
        for job, clip in zip(jobs, clips):
            if clip is None:
                print(f"  digits: dropped {WORDS[job.digit]} #{job.index} ({job.voice.synth}): too long")
                continue
            name = f"{WORDS[job.digit]}_{job.index:04d}.flac"
            write_flac(out_dir / name, clip["audio"])
            rows.append(metadata(job, name, clip))
    if len(rows) < 0.95 * len(jobs):
        raise BuildError(f"only {len(rows)} of {len(jobs)} digit clips fit into one second")
    print(f"  digits: {len(rows)} clips")
    return rows
