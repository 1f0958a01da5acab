"""Typed generation requests, one per kind of model, checked once against what the loaded model
accepts (diffusion/pipeline.py builds the `Accepts`). Every error is a one-line ValueError that
starts with the argument's name.

    accepts = Accepts("pretrained/digits", "a class-conditional mel-unet run", "mel-unet",
                      samplers=("fast", "ddpm", "ddim"), default_sampler="ddim", num_classes=10)
    request = make_request(accepts, num=2, label=[3, 7])    # MelRequest(label=(3, 7), …)

Kinds: waveform (unconditional DiffWave), class (class-conditional DiffWave), vocoder
(mel-conditioned DiffWave), mel-unet, text (diffgen), reconstruct (diffae). No TensorFlow here: `import diffusion`
stays light.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os

import numpy as np

V_MAX_STEPS = 1000                      # generate.py's bound on V-sampler steps


@dataclasses.dataclass(frozen=True)
class Accepts:
    """What a loaded model takes; `samplers` empty: sampler and steps were fixed at export."""
    name: str                           # the model's path, for messages
    what: str                           # "a class-conditional mel-unet run", for messages
    kind: str                           # waveform | class | vocoder | mel-unet | text | reconstruct
    samplers: tuple[str, ...] = ()
    default_sampler: str | None = None
    num_steps: int = 1000               # the run's T: DDIM takes 1..T steps
    num_classes: int | None = 0         # > 0 class-conditional; None: yes, count unknown
    guided: bool = False                # takes a classifier-free guidance scale
    guidance: float = 1.0               # its default scale
    n_mels: int = 0                     # a vocoder's mel bands
    seconds: float | None = 1.0         # default length (None: the model's own, fixed at export)
    reads_audio: bool = True            # a vocoder computes the log-mel of an audio file

    @property
    def fixed(self) -> bool:
        return not self.samplers


def _fail(argument: str, message: str):
    raise ValueError(f"{argument}: {message}")


def flag_message(message: str, arguments) -> str:
    """A request error "mask_start: …" in a CLI's words, "--mask-start: …", when `arguments`
    (the CLI's flags that are request arguments) holds its name."""
    name, sep, rest = message.partition(": ")
    return f"--{name.replace('_', '-')}: {rest}" if sep and name in arguments else message


def _integer(argument: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(argument, f"must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        _fail(argument, f"must be in {low}..{high}, got {value}" if high is not None
              else f"must be >= {low}, got {value}")
    return int(value)


def _positive(argument: str, value, hint: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or not value > 0:
        _fail(argument, f"must be a number > 0{hint}, got {value!r}")
    return float(value)


def _per_clip(argument: str, value, num: int) -> list:
    """One value for every clip, or a sequence of `num` (a string counts as one)."""
    if isinstance(value, (str, bytes, numbers.Number)):
        return [value] * num
    try:
        values = list(value)
    except TypeError:
        _fail(argument, f"give one value or {num} (one per clip), got {type(value).__name__}")
    if len(values) != num:
        _fail(argument, f"give one value or {num} (one per clip, num={num}), got {len(values)}")
    return values


@dataclasses.dataclass(frozen=True, kw_only=True)
class Request:
    """What every kind takes: `num` clips from noise drawn with `seed`, by `sampler` (default:
    the model's) over `steps` (ddim: 1..T, v: 1..1000; fast and ddpm have fixed steps)."""
    num: int = 1
    seed: int = 0
    sampler: str | None = None
    steps: int | None = None
    eta: float = 0.0                    # DDIM's η (0: deterministic)

    def checked(self, accepts: Accepts) -> "Request":
        """This request with defaults filled in and values normalised; ValueError otherwise."""
        num = _integer("num", self.num, 1)
        seed = _integer("seed", self.seed, 0, 2 ** 31 - 1)
        resolved = dataclasses.replace(self, num=num, seed=seed, sampler=self._sampler(accepts))
        return dataclasses.replace(resolved, **resolved._own(accepts, num))

    def _sampler(self, accepts: Accepts) -> str | None:
        if accepts.fixed:                   # an exported SavedModel
            for name, value in (("sampler", self.sampler), ("steps", self.steps)):
                if value is not None:
                    _fail(name, f"{accepts.name} is an exported SavedModel (sampler and steps "
                                f"fixed at export); drop it")
            if self.eta:
                _fail("eta", f"{accepts.name} is an exported SavedModel; drop it")
            return None
        sampler = accepts.default_sampler if self.sampler is None else self.sampler
        if sampler not in accepts.samplers:
            _fail("sampler", f"{accepts.name} takes {' | '.join(accepts.samplers)}, got "
                             f"{sampler!r}")
        if self.steps is not None:
            if sampler not in ("ddim", "v"):
                _fail("steps", f"applies to sampler ddim or v (sampler {sampler} has fixed "
                               f"steps)")
            _integer("steps", self.steps, 1, accepts.num_steps if sampler == "ddim"
                     else V_MAX_STEPS)
        if isinstance(self.eta, bool) or not isinstance(self.eta, numbers.Real) or \
                not self.eta >= 0:
            _fail("eta", f"must be a number >= 0, got {self.eta!r}")
        if self.eta and sampler != "ddim":
            _fail("eta", f"applies to sampler ddim, not {sampler}")
        return sampler

    def _own(self, accepts: Accepts, num: int) -> dict:
        """The kind's own fields, checked and normalised (a subclass adds its own)."""
        return {}


@dataclasses.dataclass(frozen=True, kw_only=True)
class AudioToAudio(Request):
    """Starting points other than the seed's noise (run directories only):
    `from_audio` (a path, or float32 mono [T] at the model's rate) noised to `strength` (SDEdit;
    1 = pure noise), with `mask_start`/`mask_end` seconds of it kept at every step (in/out-
    painting); `noise`, a given x_T (array or .npy); `slerp` (audio): DDIM-decode the slerp at
    `alpha` of the DDIM inversions of from_audio and it; `loop` N: each clip cut to whole bars
    at its tracked beat and tiled N times."""
    from_audio: object = None
    strength: float = 0.5
    mask_start: float = 0.0
    mask_end: float = 0.0
    noise: object = None
    slerp: object = None
    alpha: float = 0.5
    loop: int = 0

    def _own(self, accepts, num):
        given = [name for name in ("from_audio", "noise", "slerp") if getattr(self, name)
                 is not None] + (["loop"] if self.loop else [])
        if given and accepts.fixed:
            _fail(given[0], f"{accepts.name} is an exported SavedModel (it samples from the "
                            f"seed's noise); load the run directory")
        if self.from_audio is not None:
            check_audio("from_audio", self.from_audio)
            _fraction("strength", self.strength, "(0, 1]", lambda v: 0 < v <= 1)
        for name in ("mask_start", "mask_end"):
            value = _fraction(name, getattr(self, name), ">= 0 seconds", lambda v: v >= 0)
            if value and self.from_audio is None:
                _fail(name, "keeps seconds of from_audio at every step: give from_audio")
        if self.slerp is not None:
            check_audio("slerp", self.slerp)
            if self.from_audio is None or self.sampler != "ddim":
                _fail("slerp", "decodes DDIM inversions: give from_audio and sampler='ddim'")
        _fraction("alpha", self.alpha, "[0, 1]", lambda v: 0 <= v <= 1)
        if self.noise is not None and self.from_audio is not None:
            _fail("noise", "is a starting x_T: drop from_audio")
        if self.noise is not None and isinstance(self.noise, (str, os.PathLike)) and \
                not os.path.isfile(self.noise):
            _fail("noise", f"no such file {os.fspath(self.noise)}")
        return {"loop": _integer("loop", self.loop, 0)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class WaveformRequest(AudioToAudio):
    """A DiffWave run: clips of `seconds` (from_audio: its length); `label` (one, or one per
    clip) for a class-conditional run; clips longer than 2 × `chunk_seconds` are denoised in
    exact overlapping chunks (0: never)."""
    seconds: float | None = None        # default: 1
    label: int | tuple[int, ...] | None = None
    chunk_seconds: float = 4.0

    def _own(self, accepts, num):
        _fraction("chunk_seconds", self.chunk_seconds, ">= 0", lambda v: v >= 0)
        return {**super()._own(accepts, num), "seconds": check_seconds(self.seconds, accepts),
                "label": check_labels(self.label, num, accepts)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class MelRequest(WaveformRequest):
    """A mel-UNet run: `guidance` for a class-conditional run trained with cfg_drop (default:
    its network.guidance); `vocoder` (a mel DiffWave run's path or Pipeline) instead of
    Griffin-Lim."""
    guidance: float | None = None
    vocoder: object = None
    vocoder_gain_db: float | None = None    # the images' 0 dB level (data/mel_convert.py)

    def _own(self, accepts, num):
        if self.vocoder is not None and accepts.fixed:
            _fail("vocoder", f"{accepts.name} is an exported SavedModel (Griffin-Lim inside); "
                             f"load the run directory to use a vocoder")
        if self.vocoder_gain_db is not None:
            if self.vocoder is None:
                _fail("vocoder_gain_db", "applies with a vocoder: give vocoder")
            _fraction("vocoder_gain_db", self.vocoder_gain_db, "finite", math.isfinite)
        return {**super()._own(accepts, num), "guidance": check_guidance(self.guidance,
                                                                         accepts)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class VocoderRequest(AudioToAudio):
    """A mel vocoder (mel-conditioned DiffWave): audio for `mel`, a log-mel [frames, n_mels]
    (an array or a .npy file, DiffWave's scale: data/features.py) or an audio file whose log-mel
    is taken; `num` clips of it. `consistency` (scale) and `refine_steps` override the run's
    steering toward the mel (0 turns each off)."""
    mel: object = None
    consistency: float | None = None
    refine_steps: int | None = None

    def _own(self, accepts, num):
        for name in ("consistency", "refine_steps"):
            if getattr(self, name) is not None and accepts.fixed:
                _fail(name, f"{accepts.name} is an exported SavedModel (plain sampling); "
                            f"drop it")
        if self.consistency is not None and (
                isinstance(self.consistency, bool) or
                not isinstance(self.consistency, numbers.Real) or not self.consistency >= 0):
            _fail("consistency", f"must be a number >= 0 (0 = off), got {self.consistency!r}")
        if self.refine_steps is not None:
            _integer("refine_steps", self.refine_steps, 0)
        return {**super()._own(accepts, num), "mel": check_mel(self.mel, accepts)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TextRequest(Request):
    """A text-to-audio (diffgen) run: `text` (one prompt, or one per clip), classifier-free
    `guidance` (default: the run's network.guidance), `decode_steps` of the DiffAE decoder."""
    seconds: float | None = None        # default: 1
    text: str | tuple[str, ...] | None = None
    guidance: float | None = None
    decode_steps: int | None = None     # default 50

    def _own(self, accepts, num):
        if self.text is None:
            _fail("text", f"{accepts.name} is {accepts.what}: give a prompt")
        texts = _per_clip("text", self.text, num)
        if not all(isinstance(t, str) and t.strip() for t in texts):
            _fail("text", "give a non-empty string (or one per clip)")
        if self.decode_steps is not None and accepts.fixed:
            _fail("decode_steps", f"{accepts.name} is an exported SavedModel (fixed at export); "
                                  f"drop it")
        steps = 50 if self.decode_steps is None else \
            _integer("decode_steps", self.decode_steps, 1, V_MAX_STEPS)
        return {"seconds": check_seconds(self.seconds, accepts), "text": tuple(texts),
                "guidance": check_guidance(self.guidance, accepts), "decode_steps": steps}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReconstructRequest(Request):
    """A diffusion autoencoder (diffae) run: `from_audio` encoded to its latent and decoded by
    `decode_steps` V steps from the seed's noise."""
    from_audio: object = None
    decode_steps: int | None = None     # default 50

    def _own(self, accepts, num):
        if self.from_audio is None:
            _fail("from_audio", f"{accepts.name} is {accepts.what}: give the audio to "
                                f"reconstruct (text → audio needs a diffgen run)")
        check_audio("from_audio", self.from_audio)
        steps = 50 if self.decode_steps is None else \
            _integer("decode_steps", self.decode_steps, 1, V_MAX_STEPS)
        return {"decode_steps": steps}


def _fraction(argument: str, value, wanted: str, ok) -> float:
    """A real number for which ok(value) holds ("must be in/be `wanted`" otherwise)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
        _fail(argument, f"must be {'in ' if wanted[0] in '([' else ''}{wanted}, got {value!r}")
    return float(value)


def check_audio(argument: str, audio) -> None:
    """A path to an existing file, or a finite 1-D float array (mono samples)."""
    if isinstance(audio, (str, os.PathLike)):
        if not os.path.isfile(audio):
            _fail(argument, f"no such file {os.fspath(audio)}")
        return
    try:
        array = np.asarray(audio, np.float32)
    except (TypeError, ValueError):
        _fail(argument, f"give an audio file path or mono samples [T], got "
                        f"{type(audio).__name__}")
    if array.ndim != 1 or array.size < 1 or not np.all(np.isfinite(array)):
        _fail(argument, f"give an audio file path or finite mono samples [T], got an array of "
                        f"shape {list(array.shape)}")


def check_seconds(seconds, accepts: Accepts) -> float | None:
    return accepts.seconds if seconds is None else _positive("seconds", seconds)


def check_labels(label, num: int, accepts: Accepts) -> tuple[int, ...] | None:
    """`num` labels in 0..num_classes − 1, or None for a model without classes."""
    if accepts.num_classes == 0:
        if label is not None:
            _fail("label", f"{accepts.name} is not class-conditional; drop it")
        return None
    top = "" if accepts.num_classes is None else f"..{accepts.num_classes - 1}"
    if label is None:
        _fail("label", f"{accepts.name} is class-conditional: give a label 0{top} (one, or "
                       f"one per clip)")
    labels = _per_clip("label", label, num)
    for value in labels:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            _fail("label", f"must be an integer, got {value!r}")
        if value < 0 and accepts.num_classes is None:
            _fail("label", f"must be >= 0, got {value}")
        if value < 0 or (accepts.num_classes is not None and value >= accepts.num_classes):
            _fail("label", f"{value} is out of range 0{top}")
    return tuple(int(v) for v in labels)


def check_guidance(guidance, accepts: Accepts) -> float | None:
    """The scale (default: the model's), or None for a model without guidance."""
    if not accepts.guided:
        if guidance is not None:
            _fail("guidance", f"{accepts.name} is not trained for classifier-free guidance; "
                              f"drop it")
        return None
    return accepts.guidance if guidance is None else \
        _positive("guidance", guidance, " (1 = no guidance)")


def check_mel(mel, accepts: Accepts):
    """A path (str) to an existing file, or a finite float32 log-mel [frames, n_mels]."""
    wanted = f"give a log-mel [frames, {accepts.n_mels}] or an audio file path"
    if mel is None:
        _fail("mel", f"{accepts.name} is {accepts.what}: {wanted}")
    if isinstance(mel, (str, os.PathLike)):
        path = os.fspath(mel)
        if not os.path.isfile(path):
            _fail("mel", f"no such file {path}")
        if not accepts.reads_audio and not path.endswith(".npy"):
            _fail("mel", f"{accepts.name} takes a log-mel (.npy or an array): an exported "
                         f"vocoder cannot compute one from audio")
        return path
    try:
        array = np.asarray(mel, np.float32)
    except (TypeError, ValueError):
        _fail("mel", f"{wanted}, got {type(mel).__name__}")
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] != accepts.n_mels:
        _fail("mel", f"{wanted}, got an array of shape {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        _fail("mel", "holds NaN or infinite values")
    return array


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """What a SavedModel fixes at export (export.py): the sampler (fast is DiffWave's; a
    mel-UNet takes ddim for it), its `steps` (DDIM/V; default 50) and `eta`, diffgen's
    `decode_steps`, DiffWave's `chunk_seconds` (0: never chunk)."""
    sampler: str = "fast"
    steps: int | None = None
    eta: float = 0.0
    decode_steps: int = 50
    chunk_seconds: float = 4.0

    def __post_init__(self):
        if self.steps is not None:
            _integer("steps", self.steps, 1)
        _integer("decode_steps", self.decode_steps, 1, 1000)
        _fraction("eta", self.eta, ">= 0", lambda v: v >= 0)
        _fraction("chunk_seconds", self.chunk_seconds, ">= 0", lambda v: v >= 0)


REQUESTS = {"waveform": WaveformRequest, "class": WaveformRequest, "vocoder": VocoderRequest,
            "mel-unet": MelRequest, "text": TextRequest, "reconstruct": ReconstructRequest}


def make_request(accepts: Accepts, **kwargs) -> Request:
    """The kind's request from keyword arguments, checked; an argument the kind does not take
    is a one-line error naming it."""
    request_class = REQUESTS[accepts.kind]
    names = [f.name for f in dataclasses.fields(request_class)]
    for key in kwargs:
        if key not in names:
            kinds = [kind for kind, c in REQUESTS.items()
                     if key in {f.name for f in dataclasses.fields(c)}]
            if kinds:                       # another kind's argument
                _fail(key, f"{accepts.name} is {accepts.what}: drop it (it is for "
                           f"{' / '.join(dict.fromkeys(kinds))} models)")
            _fail(key, f"not an argument (arguments of {accepts.what}: {', '.join(names)})")
    return request_class(**kwargs).checked(accepts)
