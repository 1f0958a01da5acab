"""Render 6-second excerpts of Bach chorales (music21 corpus) with a sampled GM SoundFont.

Each clip: one four-part chorale, one ensemble (General MIDI programs for
soprano/alto/tenor/bass), one tempo, one start point on a chord onset.  Notes
are read from the score with music21 and played in-process through libfluidsynth
(pyfluidsynth), rendered at 48 kHz in float and resampled to 16 kHz.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from build_common import (
    SAMPLE_RATE,
    BuildError,
    dbfs,
    fade,
    peak_normalise,
    require_file,
    resample,
    write_flac,
)

SOUNDFONT = Path("/usr/share/sounds/sf3/FluidR3Mono_GM.sf3")
RENDER_RATE = 48000
CLIP_SECONDS = 6.0
MIN_FRAME_DBFS = -45.0     # every 250 ms frame of a clip must be louder than this
LICENCE = ("composition public domain (J. S. Bach); score encoding from the music21 corpus "
           "(freely distributable, see music21/corpus/license.txt); instrument samples "
           "FluidR3Mono GM SoundFont (MIT)")


@dataclass(frozen=True)
class Ensemble:
    name: str           # short id, stored in metadata
    phrase: str         # caption prefix, e.g. "a string quartet playing"
    programs: tuple     # GM program (0-based) for soprano, alto, tenor, bass


ENSEMBLES = (
    Ensemble("string quartet", "a string quartet playing", (40, 40, 41, 42)),
    Ensemble("brass quartet", "a brass quartet (trumpets, trombone, tuba) playing", (56, 56, 57, 58)),
    Ensemble("church organ", "a church organ playing", (19, 19, 19, 19)),
    Ensemble("woodwind quartet", "a woodwind quartet (flute, oboe, clarinet, bassoon) playing",
             (73, 68, 71, 70)),
    Ensemble("choir aahs", "a sampled 'aah' choir singing", (52, 52, 52, 52)),
    Ensemble("piano", "a piano playing", (0, 0, 0, 0)),
    Ensemble("saxophone quartet", "a saxophone quartet playing", (64, 65, 66, 67)),
    Ensemble("string orchestra", "a string orchestra playing", (48, 48, 48, 48)),
)


@dataclass
class Chorale:
    file: str           # e.g. "bach/bwv329.mxl"
    bwv: str            # e.g. "329" or "1.6"
    key: str            # e.g. "E flat major"
    notes: list         # (voice, onset_ql, end_ql, midi_pitch)
    onsets: list        # quarter-length offsets where soprano and bass both start a note


def key_name(k) -> str:
    tonic = k.tonic.name.replace("-", " flat").replace("#", " sharp")
    return f"{tonic} {k.mode}"


def load_chorale(path: Path) -> Chorale | None:
    """Parse a chorale; return None unless it has exactly four voices."""
    from music21 import converter
    score = converter.parse(str(path))
    if len(score.parts) != 4:
        return None
    notes = []
    for voice, part in enumerate(score.parts):
        flat = part.stripTies().flatten()
        for n in flat.notes:
            if n.quarterLength <= 0:      # grace notes have no duration of their own
                continue
            start = float(flat.elementOffset(n))
            end = start + float(n.quarterLength)
            for p in n.pitches:           # a chord yields several pitches
                notes.append((voice, start, end, int(p.midi)))
    if not notes:
        return None
    starts = [{s for v, s, e, p in notes if v == voice} for voice in (0, 3)]
    onsets = sorted(starts[0] & starts[1])
    bwv = re.fullmatch(r"bwv([0-9.]+)", path.stem).group(1)
    return Chorale(f"bach/{path.name}", bwv, key_name(score.analyze("key")), notes, onsets)


def covered(notes, t0: float, t1: float) -> bool:
    """True if some note sounds at every instant of [t0, t1] (all in quarter lengths)."""
    spans = sorted((s, e) for _, s, e, _ in notes if e > t0 and s < t1)
    reach = t0
    for s, e in spans:
        if s > reach + 1e-6:
            return False
        reach = max(reach, e)
    return reach >= t1 - 1e-6


class Renderer:
    """In-process libfluidsynth; a fresh synth per clip so clips do not share reverb tails."""

    def __init__(self, soundfont: Path):
        try:
            import fluidsynth
        except ImportError as exc:  # pyfluidsynth raises ImportError when libfluidsynth is absent
            raise BuildError(f"pyfluidsynth/libfluidsynth unavailable ({exc}); "
                             "apt-get install libfluidsynth3 and pip install pyfluidsynth") from exc
        self.fs = fluidsynth
        self.soundfont = str(require_file(soundfont, "fluidr3mono-gm-soundfont"))
        # pyfluidsynth only wraps the dithered 16-bit writer; render float (undithered,
        # reproducible) through the libfluidsynth handle it has already opened.
        write = fluidsynth._fl.fluid_synth_write_float
        write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                          ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        write.restype = ctypes.c_int
        self._write = write

    def render(self, programs, events, seconds: float, reverb_level: float) -> np.ndarray:
        """events: (time_s, is_on, channel, key, velocity); returns mono float at RENDER_RATE."""
        synth = self.fs.Synth(gain=0.4, samplerate=float(RENDER_RATE),
                              **{"synth.dynamic-sample-loading": 1, "synth.cpu-cores": 1,
                                 "synth.reverb.level": float(reverb_level)})
        try:
            sfid = synth.sfload(self.soundfont)
            if sfid < 0:
                raise BuildError(f"libfluidsynth could not load {self.soundfont}")
            for chan, program in enumerate(programs):
                synth.program_select(chan, sfid, 0, program)
            total = int(round(seconds * RENDER_RATE))
            left = np.zeros(total, np.float32)
            right = np.zeros(total, np.float32)
            pos = 0

            def advance(to: int):
                nonlocal pos
                to = min(to, total)
                if to > pos:
                    ptr_l = left[pos:].ctypes.data
                    ptr_r = right[pos:].ctypes.data
                    self._write(synth.synth, to - pos, ptr_l, 0, 1, ptr_r, 0, 1)
                    pos = to

            for t, is_on, chan, key, vel in sorted(events, key=lambda e: (e[0], e[1])):
                advance(int(round(t * RENDER_RATE)))
                if is_on:
                    synth.noteon(chan, key, vel)
                else:
                    synth.noteoff(chan, key)
            advance(total)
        finally:
            synth.delete()
        return 0.5 * (left.astype(np.float64) + right)


def make_clip(renderer: Renderer, chorale: Chorale, ensemble: Ensemble, rng) -> tuple | None:
    """Render one clip; returns (audio, facts) or None if no start point gives music throughout."""
    bpm = int(rng.integers(60, 101))
    sec_per_ql = 60.0 / bpm
    clip_ql = CLIP_SECONDS / sec_per_ql
    last = max(e for _, _, e, _ in chorale.notes)
    starts = [t for t in chorale.onsets if t + clip_ql <= last and covered(chorale.notes, t, t + clip_ql)]
    rng.shuffle(starts)
    base_vel = int(rng.integers(70, 101))
    reverb = float(rng.uniform(0.3, 0.8))
    peak_db = float(rng.uniform(-4.5, -1.5))
    for start in starts[:5]:
        events = []
        for voice, s, e, pitch in chorale.notes:
            if s < start or s >= start + clip_ql:
                continue
            # a few ms of human looseness, but the first chord starts exactly at 0
            jitter = float(rng.uniform(0.0, 0.008)) if s > start else 0.0
            on = (s - start) * sec_per_ql + jitter
            off = (e - start) * sec_per_ql - 0.01
            vel = int(np.clip(base_vel + (6 if voice == 0 else 0) + rng.integers(-8, 9), 1, 127))
            events += [(on, True, voice, pitch, vel), (off, False, voice, pitch, 0)]
        audio = renderer.render(ensemble.programs, events, CLIP_SECONDS + 0.1, reverb)
        audio = resample(audio, RENDER_RATE)[: int(CLIP_SECONDS * SAMPLE_RATE)]
        if not np.any(audio):
            continue
        audio = fade(peak_normalise(audio, peak_db), 10.0)
        frames = audio[: len(audio) // 4000 * 4000].reshape(-1, 4000)   # 250 ms frames
        if min(dbfs(f) for f in frames) < MIN_FRAME_DBFS:
            continue
        return audio, {"bpm": bpm, "start_quarter": start, "peak_dbfs": round(peak_db, 2)}
    return None


def build(out_dir: Path, seed: int, count: int = 42) -> list[dict]:
    """Write `count` chorale clips into out_dir; return metadata rows."""
    try:
        from music21 import corpus
    except ImportError as exc:
        raise BuildError("music21 is not installed: pip install -r dataset/requirements-build.txt") from exc
    renderer = Renderer(SOUNDFONT)
    files = sorted(p for p in map(Path, corpus.getComposer("bach"))
                   if re.fullmatch(r"bwv[0-9.]+\.mxl", p.name))
    if not files:
        raise BuildError("no Bach chorales found in the music21 corpus")
    order = np.random.default_rng([seed, 0]).permutation(len(files))
    ensemble_of = np.random.default_rng([seed, 1]).permutation(
        [i % len(ENSEMBLES) for i in range(count)])
    rows = []
    for idx in order:
        if len(rows) == count:
            break
        chorale = load_chorale(files[idx])
        if chorale is None:
            continue
        n = len(rows)
        ensemble = ENSEMBLES[ensemble_of[n]]
        result = make_clip(renderer, chorale, ensemble, np.random.default_rng([seed, 2, int(idx)]))
        if result is None:
            continue
        audio, facts = result
        name = f"chorale_{n:03d}_bwv{chorale.bwv}.flac"
        write_flac(out_dir / name, audio)
        rows.append({
            "path": name,
            "label": None,
            "label_name": None,
            "caption": (f"{ensemble.phrase} a four-part Bach chorale (BWV {chorale.bwv}) "
                        f"in {chorale.key} at {facts['bpm']} bpm"),
            "licence": LICENCE,
            "source": f"music21 corpus {chorale.file}; {SOUNDFONT.name}",
            "sample_rate": SAMPLE_RATE,
            "num_samples": len(audio),
            "bwv": chorale.bwv,
            "ensemble": ensemble.name,
            "gm_programs": list(ensemble.programs),
            "tempo_bpm": facts["bpm"],
            "key": chorale.key,
            "start_quarter": facts["start_quarter"],
        })
        print(f"  chorales: {name} ({ensemble.name}, {facts['bpm']} bpm, {chorale.key})", flush=True)
    if len(rows) < count:
        raise BuildError(f"only {len(rows)} of {count} chorale clips could be rendered")
    return rows
