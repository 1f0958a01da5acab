"""Every hyperparameter of the project: typed, validated sections, JSON round trip, --set.

    params = get_preset("tiny")                # configs/: the named presets of each family
    params = apply_overrides(params, ["network.residual_channels=32", "batch_size=8"])
    params.save(run_dir / "params.json");  Params.load(run_dir / "params.json")

A key is `section.name` or, when the name is unique across sections, just `name`.
Bad keys and values raise ParamsError with a one-line message naming the key.
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path


class ParamsError(ValueError):
    """A bad hyperparameter key or value (the message names it)."""


class floats(tuple):  # noqa: N801 — field type tags: a tuple of floats / of ints
    __name__ = "list of numbers"


class ints(tuple):  # noqa: N801
    __name__ = "list of integers"


@dataclass
class DataParams:
    sample_rate: int = 16000          # model rate; audio is resampled to it in-graph
    crop_samples: int = 16000         # clip length fed to the model (at the model rate)
    crop: str = "random"              # random: a random window per epoch | fixed: tiled splits
    short_clips: str = "pad"          # a file shorter than the crop: pad (zeros) | skip | error
    normalize: str = "peak"           # none | peak | rms
    normalize_level_db: float = -1.0  # target peak (or RMS) level in dBFS
    channels: str = "mono"            # mono (average) | keep
    batch_size: int = 16              # global batch (split across replicas)
    shuffle_buffer: int = 512
    decoder: str = "auto"             # auto | tfio | soundfile (see data/audio_io.py)
    segment_seconds: float = 60.0     # longer files are read and cached in segments this long
    recover: str = "warn"             # a file read only in part (truncated, streamed WAV):
                                      # warn (use it, listed in the report) | skip | error

    def validate(self):
        _positive(self, "sample_rate", "crop_samples", "batch_size",
                  "shuffle_buffer")
        _choice(self, "crop", ("random", "fixed"))
        _choice(self, "short_clips", ("pad", "skip", "error"))
        _choice(self, "normalize", ("none", "peak", "rms"))
        _choice(self, "channels", ("mono", "keep"))
        _choice(self, "decoder", ("auto", "tfio", "soundfile"))
        _choice(self, "recover", ("warn", "skip", "error"))
        if not self.segment_seconds >= 1.0:
            raise ParamsError(f"data.segment_seconds must be >= 1, got {self.segment_seconds}")
        if not -100.0 <= self.normalize_level_db <= 0.0:
            raise ParamsError(f"data.normalize_level_db must be in [-100, 0] dBFS, "
                              f"got {self.normalize_level_db}")
        if self.sample_rate > 384_000:
            raise ParamsError(f"data.sample_rate must be <= 384000 Hz, got {self.sample_rate}")


@dataclass
class DiffWaveParams:
    residual_layers: int = 30         # L
    residual_channels: int = 64       # C
    dilation_cycle: int = 10          # dilation 2^(i mod cycle)
    conditioning: str = "none"        # none | class | mel
    num_classes: int = 10             # class-conditional: label embedding size
    n_mels: int = 80                  # mel-conditional (vocoder) input bands
    hop_length: int = 256             # mel frame hop = upsampler factor (two ×√hop stages)
    impl: str = "auto"                # auto (probe this machine) | reference | fused (same weights)
    # mel runs, sampling only (diffusion/core/consistency.py): toward the conditioning log-mel
    consistency: float = 0.0          # guidance scale s on each step's x̂₀ (0 = off)
    consistency_steps: int = 10       # gradient moves of x̂₀ per sampling step
    refine_steps: int = 0             # Adam steps on the sampled x₀ afterwards (0 = off)
    refine_rate: float = 1e-3         # their learning rate (Adam)
    # mel runs: the prior of ε (PriorGrad, Lee et al. 2022): N(0, I), or N(0, Σ) with Σ^½ per
    # sample from the conditioning frame's mel energy, clip(E/prior_energy, prior_std_min, 1)
    prior: str = "standard"           # standard | priorgrad
    prior_std_min: float = 0.1        # σ floor (PriorGrad's σ_min)
    prior_energy: float = 20.0        # the frame mel energy that maps to σ = 1 (≈ the max of
                                      # the vocoder corpus at −1 dBFS peak)

    def validate(self):
        _positive(self, "residual_layers", "residual_channels", "dilation_cycle",
                  "num_classes", "n_mels", "hop_length", "consistency_steps", "refine_rate")
        _nonnegative(self, "consistency", "refine_steps")
        _positive(self, "prior_std_min", "prior_energy")
        _choice(self, "conditioning", ("none", "class", "mel"))
        _choice(self, "prior", ("standard", "priorgrad"))
        if self.prior == "priorgrad" and self.conditioning != "mel":
            raise ParamsError(f"network.prior 'priorgrad' draws its noise from the conditioning "
                              f"mel: it needs conditioning 'mel', not {self.conditioning!r}")
        if not self.prior_std_min <= 1.0:
            raise ParamsError(f"network.prior_std_min must be in (0, 1], got "
                              f"{self.prior_std_min}")
        _choice(self, "impl", ("auto", "reference", "fused"))
        if self.conditioning != "mel" and (self.consistency or self.refine_steps):
            raise ParamsError(f"network.consistency / network.refine_steps steer toward a "
                              f"conditioning log-mel: they need conditioning 'mel', not "
                              f"{self.conditioning!r}")


@dataclass
class DiffusionParams:
    num_steps: int = 50               # T
    beta_start: float = 1e-4          # β₁
    beta_end: float = 0.05            # β_T (linear schedule)
    inference_betas: floats = (1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5)  # DiffWave fast schedule
    loss: str = "l1"                  # l1 (DiffWave reference) | l2 on ε

    def validate(self):
        _positive(self, "num_steps")
        if not 0.0 < self.beta_start <= self.beta_end < 1.0:
            raise ParamsError(f"diffusion: need 0 < beta_start <= beta_end < 1, got "
                              f"beta_start={self.beta_start}, beta_end={self.beta_end}")
        if not self.inference_betas or not all(0.0 < b < 1.0 for b in self.inference_betas):
            raise ParamsError(f"diffusion.inference_betas must be values in (0, 1), "
                              f"got {list(self.inference_betas)}")
        _choice(self, "loss", ("l1", "l2"))
        # Fast sampling maps each ᾱ'_s onto the training ᾱ_t: the last must not pass ᾱ_T.
        train_end = math.prod(1.0 - (self.beta_start + (self.beta_end - self.beta_start) *
                                     i / max(self.num_steps - 1, 1))
                              for i in range(self.num_steps))
        if math.prod(1.0 - b for b in self.inference_betas) < train_end - 1e-12:
            raise ParamsError(f"diffusion.inference_betas {list(self.inference_betas)} add more "
                              f"noise than the training schedule (ᾱ_T = {train_end:.4g}); "
                              f"lower them or raise beta_end/num_steps")


@dataclass
class TrainParams:
    learning_rate: float = 2e-4
    warmup_steps: int = 0
    grad_clip_norm: float = 1e9       # global-norm clip; the norm is logged either way
    ema_decay: float = 0.999          # the EMA decay (its maximum when ema_power > 0)
    ema_power: float = 0.0            # > 0: diffusers' warm-up 1 − (1 + step)^−power (teticio 0.75)
    mixed_precision: bool = False     # bf16 on CPU, fp16 + loss scaling on GPU
    precision_fallback: str = "warn"  # no native bf16/fp16 here: warn (→ float32) | error
    seed: int = 0
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 50
    audio_every: int = 5000
    max_steps: int = 1_000_000
    grad_accum_steps: int = 1         # micro-batches of data.batch_size summed per update

    def validate(self):
        _positive(self, "learning_rate", "grad_clip_norm", "checkpoint_every",
                  "keep_checkpoints", "log_every", "audio_every", "max_steps",
                  "grad_accum_steps")
        _nonnegative(self, "warmup_steps", "seed", "ema_power")
        _choice(self, "precision_fallback", ("warn", "error"))
        if not 0.0 <= self.ema_decay < 1.0:
            raise ParamsError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass
class MelParams:
    """The Mel (data/mel.py) of the mel families: images of x_res frames × y_res mel bands."""
    x_res: int = 256                  # image width = frames per slice
    y_res: int = 256                  # image height = mel bands
    n_fft: int = 2048
    hop_length: int = 512
    top_db: float = 80.0
    n_iter: int = 32                  # Griffin-Lim iterations (image → audio)

    def validate(self):
        _positive(self, "x_res", "y_res", "n_fft", "hop_length", "top_db", "n_iter")

    def _check_levels(self, name: str):
        """network.<name>: positive multiples of norm_groups; images halve at every level."""
        channels, norm_groups = getattr(self, name), self.norm_groups
        if any(c <= 0 or c % norm_groups for c in channels):
            raise ParamsError(f"network.{name} {list(channels)} must be positive multiples "
                              f"of norm_groups={norm_groups}")
        factor = 2 ** (len(channels) - 1)
        if self.x_res % factor or self.y_res % factor:
            raise ParamsError(f"network.x_res and y_res must be multiples of {factor} "
                              f"(2^(levels−1)), got {self.x_res}×{self.y_res}")

    @property
    def slice_samples(self) -> int:
        return self.x_res * self.hop_length - 1


@dataclass
class MelUNetParams(MelParams):
    """teticio/audio-diffusion: Mel images and a 2-D UNet."""
    block_channels: ints = (128, 128, 256, 256, 512, 512)
    attention: ints = (0, 0, 0, 0, 1, 0)   # self-attention at these levels (1 = on)
    layers_per_block: int = 2
    norm_groups: int = 32
    encoding_dim: int = 0             # > 0: conditioned on an encoding vector (teticio: 100)
    num_classes: int = 0              # > 0: class-conditional (labels as one-hot encodings)
    vae_run: str = ""                 # a mel-vae run: diffusion on its latents (latent mode)
    latent_scale: float = 0.18215     # latents × this before diffusion (latent diffusion's factor)
    cfg_drop: float = 0.0             # class runs: p(label → the null, all-zero one-hot) in training
    guidance: float = 1.0             # class runs: default sampling scale (1 = no guidance)

    def validate(self):
        super().validate()
        _positive(self, "layers_per_block", "norm_groups", "latent_scale")
        _nonnegative(self, "encoding_dim", "num_classes")
        _check_guidance(self)
        if (self.cfg_drop or self.guidance != 1.0) and not self.num_classes:
            raise ParamsError(f"network.cfg_drop / network.guidance are for class-conditional "
                              f"runs (network.num_classes > 0), got cfg_drop {self.cfg_drop}, "
                              f"guidance {self.guidance}")
        if self.guidance != 1.0 and not self.cfg_drop:
            raise ParamsError(f"network.guidance {self.guidance} needs a model trained with "
                              f"network.cfg_drop > 0 (the null label's prediction)")
        if self.num_classes and self.encoding_dim not in (0, self.num_classes):
            raise ParamsError(f"network.num_classes {self.num_classes} feeds the UNet one-hot "
                              f"encodings: leave encoding_dim 0 (got {self.encoding_dim})")
        if len(self.attention) != len(self.block_channels):
            raise ParamsError(f"network.attention needs one flag per level "
                              f"({len(self.block_channels)}), got {list(self.attention)}")
        self._check_levels("block_channels")


@dataclass
class MelVAEParams(MelParams):
    """The KL autoencoder (network/vae.py) of latent mel diffusion; reconstruction + KL loss."""
    channels: ints = (32, 64, 64)     # per level; latents are 2^(levels−1) times smaller
    latent_channels: int = 4
    norm_groups: int = 8
    kl_weight: float = 1e-6           # KL(q(z|x) ‖ N(0, I)) weight next to the L1 term

    def validate(self):
        super().validate()
        _positive(self, "latent_channels", "norm_groups")
        _nonnegative(self, "kl_weight")
        if not self.channels:
            raise ParamsError("network.channels needs at least one level")
        self._check_levels("channels")


@dataclass
class DiffAEParams:
    """Moûsai's diffusion autoencoder: |STFT| conv encoder → tanh latent; 1-D UNet decoder (v)."""
    n_fft: int = 1023
    hop_length: int = 256
    encoder_channels: int = 512
    encoder_multipliers: ints = (1, 1, 1)       # one more than encoder_factors
    encoder_factors: ints = (2, 2)
    encoder_blocks: ints = (4, 8)
    latent_channels: int = 32                   # latent hop = hop_length · Π encoder_factors
    channels: ints = (256, 512, 512, 512, 1024, 1024, 1024)   # decoder UNet, per level
    factors: ints = (1, 2, 2, 2, 2, 2, 2)
    items: ints = (1, 2, 2, 2, 2, 2, 2)
    attentions: ints = (0, 0, 0, 0, 1, 1, 1)
    heads: int = 8
    head_features: int = 64
    inject_depth: int = 4                       # the latent enters the decoder at this level
    patch: int = 1                              # samples folded into channels at the stem

    def validate(self):
        _positive(self, "n_fft", "hop_length", "encoder_channels", "latent_channels", "heads",
                  "head_features", "patch")
        _levels(self, "encoder_factors", "encoder_blocks")
        if len(self.encoder_multipliers) != len(self.encoder_factors) + 1:
            raise ParamsError(f"network.encoder_multipliers needs {len(self.encoder_factors) + 1}"
                              f" entries (one more than encoder_factors)")
        _levels(self, "channels", "factors", "items", "attentions")
        if not 0 <= self.inject_depth < len(self.channels):
            raise ParamsError(f"network.inject_depth must be in 0..{len(self.channels) - 1}, "
                              f"got {self.inject_depth}")
        if self.latent_hop % self.depth_factor(self.inject_depth):
            raise ParamsError(f"network: the latent hop {self.latent_hop} must be a multiple of "
                              f"the decoder's down-sampling at inject_depth "
                              f"({self.depth_factor(self.inject_depth)})")

    @property
    def latent_hop(self) -> int:
        return self.hop_length * math.prod(self.encoder_factors)

    def depth_factor(self, depth: int) -> int:
        return self.patch * math.prod(self.factors[:depth + 1])


@dataclass
class DiffGenParams:
    """Moûsai's text-conditioned latent generator: a 1-D UNet over DiffAE latents with
    cross-attention to frozen text-encoder states and classifier-free guidance."""
    autoencoder: str = ""                       # the DiffAE run directory (train.py --autoencoder)
    text_encoder: str = ""                      # keras-hub preset directory; "" = all-MiniLM-L6-v2
    text_max_length: int = 64                   # tokens (reference: 128 with T5-base)
    text_dim: int = 384                         # the encoder's state features (MiniLM: 384)
    latent_channels: int = 32                   # must equal the autoencoder's
    channels: ints = (128, 256, 512, 512, 1024, 1024)
    factors: ints = (1, 2, 2, 2, 2, 2)
    items: ints = (2, 2, 2, 4, 8, 8)
    attentions: ints = (0, 0, 1, 1, 1, 1)
    cross_attentions: ints = (1, 1, 1, 1, 1, 1)
    heads: int = 12
    head_features: int = 64
    cfg_drop: float = 0.1                       # p(text → learned null embedding) in training
    guidance: float = 5.0                       # default sampling scale (1 = no guidance)

    def validate(self):
        _positive(self, "text_max_length", "text_dim", "latent_channels", "heads",
                  "head_features")
        _levels(self, "channels", "factors", "items", "attentions", "cross_attentions")
        _check_guidance(self)
        if self.text_max_length < 2:
            raise ParamsError(f"network.text_max_length must be >= 2, got {self.text_max_length}")


def _check_guidance(section):
    """Classifier-free guidance: cfg_drop in [0, 1), guidance > 0."""
    if not 0.0 <= section.cfg_drop < 1.0:
        raise ParamsError(f"network.cfg_drop must be in [0, 1), got {section.cfg_drop}")
    if not section.guidance > 0:
        raise ParamsError(f"network.guidance must be > 0 (1 = no guidance), got "
                          f"{section.guidance}")


def _levels(section, *names):
    """Per-level lists: equally long, non-empty, positive (flags: 0/1)."""
    lengths = {len(getattr(section, n)) for n in names}
    if len(lengths) != 1 or 0 in lengths:
        raise ParamsError(f"network.{', '.join(names)} need one entry per level (equal, "
                          f"non-empty lengths), got "
                          f"{', '.join(str(list(getattr(section, n))) for n in names)}")
    for n in names:
        flags = n.endswith("attentions")
        if any(v not in (0, 1) if flags else v <= 0 for v in getattr(section, n)):
            raise ParamsError(f"network.{n} must be {'0/1 flags' if flags else '> 0'}, "
                              f"got {list(getattr(section, n))}")


NETWORKS = {"diffwave": DiffWaveParams,   # model family → its network section
            "mel-unet": MelUNetParams, "mel-vae": MelVAEParams, "diffae": DiffAEParams,
            "diffgen": DiffGenParams}


@dataclass
class Params:
    model: str = "diffwave"
    data: DataParams = field(default_factory=DataParams)
    network: typing.Any = field(default_factory=DiffWaveParams)
    diffusion: DiffusionParams = field(default_factory=DiffusionParams)
    train: TrainParams = field(default_factory=TrainParams)

    SECTIONS = ("data", "network", "diffusion", "train")

    def validate(self) -> "Params":
        if self.model not in NETWORKS:
            raise ParamsError(f"model must be one of {sorted(NETWORKS)}, got {self.model!r}")
        if not isinstance(self.network, NETWORKS[self.model]):
            raise ParamsError(f"network section does not belong to model {self.model!r}")
        for name in self.SECTIONS:
            getattr(self, name).validate()
        if isinstance(self.network, MelParams) and \
                self.data.crop_samples != self.network.slice_samples:
            raise ParamsError(f"data.crop_samples must be one Mel slice, x_res·hop_length − 1 "
                              f"= {self.network.slice_samples}; got {self.data.crop_samples}")
        if self.model == "diffae":
            multiple = math.lcm(self.network.latent_hop, self.network.depth_factor(
                len(self.network.channels) - 1))
            if self.data.crop_samples % multiple:
                raise ParamsError(f"data.crop_samples must be a multiple of {multiple} (latent "
                                  f"hop and decoder down-sampling); got {self.data.crop_samples}")
        return self

    def to_dict(self) -> dict:
        return {"model": self.model,
                **{s: dataclasses.asdict(getattr(self, s)) for s in self.SECTIONS}}

    @classmethod
    def from_dict(cls, raw: dict, where: str = "params") -> "Params":
        if not isinstance(raw, dict):
            raise ParamsError(f"{where}: expected a JSON object, got {type(raw).__name__}")
        unknown = set(raw) - {"model", *cls.SECTIONS}
        if unknown:
            raise ParamsError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        model = raw.get("model", "diffwave")
        if model not in NETWORKS:
            raise ParamsError(f"{where}: model must be one of {sorted(NETWORKS)}, got {model!r}")
        params = cls(model=model, network=NETWORKS[model]())
        for section in cls.SECTIONS:
            values = raw.get(section, {})
            if not isinstance(values, dict):
                raise ParamsError(f"{where}: {section} must be an object")
            for key, value in values.items():
                _set(params, section, key, value, where)
        try:
            return params.validate()
        except ParamsError as e:
            raise ParamsError(f"{where}: {e}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(self.to_json() + "\n")
        tmp.replace(path)   # atomic: a crash never leaves half a params file

    @classmethod
    def load(cls, path) -> "Params":
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ParamsError(f"{path}: no such params file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ParamsError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(raw, where=str(path))


def _positive(section, *names):
    for name in names:
        value = getattr(section, name)
        if value <= 0:
            raise ParamsError(f"{_section_name(section)}.{name} must be > 0, got {value}")


def _nonnegative(section, *names):
    for name in names:
        value = getattr(section, name)
        if value < 0:
            raise ParamsError(f"{_section_name(section)}.{name} must be >= 0, got {value}")


def _choice(section, name, choices):
    value = getattr(section, name)
    if value not in choices:
        raise ParamsError(f"{_section_name(section)}.{name} must be one of "
                          f"{', '.join(choices)}; got {value!r}")


def _section_name(section) -> str:
    return {DataParams: "data", DiffusionParams: "diffusion", TrainParams: "train"}.get(
        type(section), "network")


def _coerce(value, kind, key):
    """Converts a JSON value or a command-line string to the field's type."""
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if isinstance(value, bool):
                return value
            raise ValueError
        if kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind in (floats, ints):
            if isinstance(value, str):
                value = json.loads(value) if value.strip().startswith("[") else value.split(",")
            items = tuple(float(v) for v in value)
            if kind is ints:
                if not all(v.is_integer() for v in items):
                    raise ValueError
                return tuple(int(v) for v in items)
            return items
        if kind is str:
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError, json.JSONDecodeError):
        pass
    raise ParamsError(f"{key}: expected {kind.__name__}, got {value!r}")


def _set(params: Params, section: str, name: str, value, where="") -> None:
    target = getattr(params, section)
    kinds = {f.name: f.type for f in dataclasses.fields(target)}
    key = f"{section}.{name}"
    if name not in kinds:
        raise ParamsError(f"{where + ': ' if where else ''}unknown key {key!r}")
    kind = {"int": int, "float": float, "str": str, "bool": bool, "floats": floats,
            "ints": ints}[kinds[name]]
    setattr(target, name, _coerce(value, kind, key))


def apply_overrides(params: Params, overrides) -> Params:
    """Applies `key=value` strings (as from --set) to a copy of `params`, then validates."""
    params = Params.from_dict(params.to_dict())
    for item in overrides or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParamsError(f"--set expects key=value, got {item!r}")
        if "." in key:
            section, name = key.split(".", 1)
            if section not in Params.SECTIONS:
                raise ParamsError(f"unknown key {key!r} (sections: {', '.join(Params.SECTIONS)})")
        else:
            owners = [s for s in Params.SECTIONS
                      if key in {f.name for f in dataclasses.fields(getattr(params, s))}]
            if not owners:
                raise ParamsError(f"unknown key {key!r}")
            if len(owners) > 1:
                raise ParamsError(f"key {key!r} is ambiguous: use one of "
                                  f"{', '.join(o + '.' + key for o in owners)}")
            section, name = owners[0], key
        _set(params, section, name, value.strip())
    return params.validate()


def quiet_tensorflow() -> None:
    """CLIs show their own one-line messages: TF's Python warnings (AutoGraph notes,
    unrestored-checkpoint reports after an error we already explained) are noise there."""
    import logging
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
