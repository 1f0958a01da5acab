"""The Python API: a loaded model you call for clips (docs/python-api.md).

    pipe = Pipeline.from_pretrained("pretrained/digits")   # a run, pretrained/ or SavedModel
    out = pipe(num=2, seconds=1, seed=0, label=[3, 7])
    out.audio, out.sample_rate, out.labels;  out.save("out/")

One chain for every kind, as generate.py's: request (diffusion/requests.py, checked before any
work) → scheduler → conditioning → shape → sample → to_audio → vocoder → crop to `seconds`.
Audio-to-audio (from_audio, strength, masks, noise, slerp) and loops go the same way, for
every kind that takes them. A Pipeline keeps its family and model, so the family's compiled
sampling step is traced on the first call only. An exported SavedModel runs its own in-graph
loop (sampler fixed; diffusion/serving.py).
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from data.features import read_log_mel, read_mono
from data.figures import save_clip_figure
from diffusion.core.consistency import Consistency
from diffusion.core.sampling import chunked, edge_mask, encode, slerp
from diffusion.families.base import Request as DecodeRequest
from diffusion.families.mel.vocoder import load_vocoder, run_vocoder
from diffusion.families.registry import load_run
from diffusion.requests import Accepts, Request, make_request
from diffusion.serving import is_saved_model, load_saved_model

PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"   # bundled models by name


@dataclasses.dataclass
class Output:
    """Clips made by one call: audio float32 [num, samples] at sample_rate, the labels or
    captions they were asked for, a mel-UNet's uint8 mel images [num, H, W] (else None)."""
    audio: np.ndarray
    sample_rate: int
    labels: tuple[int, ...] | None = None
    captions: tuple[str, ...] | None = None
    images: np.ndarray | None = None
    name: str = "clip"                  # file stem: <model>_<sampler>_seed<S>
    steps: int = 0                      # denoising steps run (0: fixed inside a SavedModel)
    elapsed: float = 0.0                # seconds of the call
    info: str | None = None             # a line about the conditioning (label, prompt…)
    sampler: str | None = None          # None: fixed inside a SavedModel

    def save(self, directory) -> list[str]:
        """DIR/<name>_<i>.wav (16-bit PCM) and .png (waveform + log-mel, titled with the
        label or caption; data/figures.py) per clip, and a mel-UNet's image as _image.png;
        returns the WAV paths."""
        import soundfile as sf  # optional at import: only saving needs it
        os.makedirs(directory, exist_ok=True)
        paths = []
        for i, clip in enumerate(self.audio):
            stem = f"{self.name}_{i}"
            base = os.path.join(str(directory), stem)
            sf.write(base + ".wav", clip, self.sample_rate, subtype="PCM_16")
            save_clip_figure(base + ".png", clip, self.sample_rate, self.title(i, stem))
            if self.images is not None:
                with open(base + "_image.png", "wb") as f:
                    f.write(tf.io.encode_png(self.images[i][..., None]).numpy())
            paths.append(base + ".wav")
        return paths

    def title(self, i: int, stem: str) -> str:
        if self.labels is not None:
            return f"{stem}: label {self.labels[i]}"
        if self.captions is not None:
            caption = self.captions[i]
            return f"{stem}: {caption if len(caption) <= 60 else caption[:57] + '...'}"
        return stem


class Pipeline:
    """A model loaded for sampling. `pipe(**arguments)` → Output; `pipe.request(**arguments)`
    checks them without sampling. Arguments per kind (pipe.accepts.kind): diffusion/requests.py's
    WaveformRequest, VocoderRequest, MelRequest, TextRequest, ReconstructRequest."""

    def __init__(self, path: str, accepts: Accepts, run=None, served=None):
        self.path, self.accepts = path, accepts
        self.run = run                  # (params, family, model) of a run directory, or None
        self.served = served            # serving.Served of an exported SavedModel, or None
        self._vocoders = {}             # vocoder Pipelines loaded from paths, by path

    @classmethod
    def from_pretrained(cls, path, use_ema: bool = True) -> "Pipeline":
        """A run directory (train.py's, or one of pretrained/: a bare name like "digits" is
        the bundled one), or an exported SavedModel; one-line ValueError otherwise."""
        path = os.fspath(path)
        if not os.path.exists(path) and os.sep not in path and (PRETRAINED / path).is_dir():
            path = str(PRETRAINED / path)
        if is_saved_model(path):
            served = load_saved_model(path)
            return cls(path, served.accepts(), served=served)
        if not os.path.isdir(path):
            raise ValueError(f"{path}: no such run directory, pretrained model or SavedModel")
        if not os.path.isfile(os.path.join(path, "params.json")):
            raise ValueError(f"{path}: not a run directory (params.json), a pretrained model or "
                             f"an exported SavedModel (saved_model.pb)")
        return cls.from_loaded(path, *load_run(path, use_ema=use_ema))   # RunError: ValueError

    @classmethod
    def from_loaded(cls, path, params, family, model) -> "Pipeline":
        """Around a run already loaded (e.g. the model being trained): nothing is reloaded."""
        accepts = run_accepts(os.fspath(path), params, family)
        family.load_frozen()                # a diffgen's DiffAE, loaded and checked now
        return cls(os.fspath(path), accepts, run=(params, family, model))

    def __repr__(self) -> str:
        return f"Pipeline({self.path!r}: {self.accepts.what})"

    @property
    def params(self):
        """The run's Params (params.py), or None for a SavedModel."""
        return self.run[0] if self.run else None

    @property
    def family(self):
        return self.run[1] if self.run else None

    @property
    def model(self):
        return self.run[2] if self.run else None

    @property
    def sample_rate(self) -> int:
        return self.served.sample_rate if self.served else self.params.data.sample_rate

    def request(self, **arguments) -> Request:
        """The checked request of `arguments` (ValueError naming the argument)."""
        return make_request(self.accepts, **arguments)

    def __call__(self, *, progress=None, **arguments) -> Output:
        """Clips for `arguments` (see the class); `progress(i, total)` after each sampling step
        (it may raise to cancel; not for a SavedModel, whose loop is one graph call)."""
        r = self.request(**arguments)
        start, stem = time.perf_counter(), os.path.basename(os.path.normpath(self.path))
        if self.served is not None:
            audio, images = self.served.run(r)
            return Output(audio, self.sample_rate, getattr(r, "label", None),
                          getattr(r, "text", None), images, f"{stem}_seed{r.seed}",
                          elapsed=time.perf_counter() - start)
        audio, images, rate, steps, info = self._generate(r, progress)
        return Output(np.asarray(audio, np.float32), rate, getattr(r, "label", None),
                      getattr(r, "text", None), images, f"{stem}_{r.sampler}_seed{r.seed}",
                      steps, time.perf_counter() - start, info, r.sampler)

    def encode(self, from_audio, **arguments) -> np.ndarray:
        """The DDIM inversion x_T [num, …] of `from_audio` (`steps` DDIM steps, η = 0; the
        other arguments as for a call): a `noise=` that decodes back to it (--encode)."""
        r = self.request(sampler="ddim", from_audio=from_audio, **arguments)
        cond, shape, _, init = self._start(r)
        denoise = self._denoiser(r, cond, shape) or self.family.denoiser(self.model, cond)
        return encode(denoise, self.family.scheduler("ddim", r.steps), init).numpy()

    # --- run directories: the family's chain --------------------------------------------------
    def _generate(self, r, progress):
        """(audio [N, T], images or None, rate, steps run, info line) of a checked request."""
        params, family, model = self.run
        kind, rate = self.accepts.kind, params.data.sample_rate
        scheduler = family.scheduler(r.sampler, r.steps, r.eta)
        cond, shape, seconds, init = self._start(r)
        noise = self._noise(r, shape)
        denoise = self._denoiser(r, cond, shape)
        known, options = None, {}
        if getattr(r, "mask_start", 0) or getattr(r, "mask_end", 0):   # kept at every step
            fps = family.frames_per_second()
            known = (init, edge_mask(shape, family.time_axis, round(r.mask_start * fps),
                                     round(r.mask_end * fps)))
        if getattr(r, "slerp", None) is not None:  # DDIM inversions of both, slerped, decoded
            other = family.from_audio(self._audio(r.slerp, "slerp"), r.num)
            if other.shape != init.shape:
                raise ValueError(f"slerp: gives x₀ {list(other.shape)}, from_audio gives "
                                 f"{list(init.shape)}")
            bound = denoise or family.denoiser(model, cond)
            noise = slerp(encode(bound, scheduler, init).numpy(),
                          encode(bound, scheduler, other).numpy(), r.alpha)
            init = None
        if kind == "vocoder":               # steering toward the mel: the run's, or overridden
            overrides = {"scale": r.consistency, "refine_steps": r.refine_steps}
            options["consistency"] = dataclasses.replace(
                Consistency.from_params(params.network),
                **{k: v for k, v in overrides.items() if v is not None})
        x = family.sample(model, scheduler, shape, cond, seed=r.seed, denoise=denoise,
                          progress=progress, init=init, strength=getattr(r, "strength", 1.0),
                          noise=noise, known=known, **options)
        audio, images = family.to_audio(x, DecodeRequest(r.num, seconds, r.seed,
                                                         getattr(r, "decode_steps", 50)))
        if getattr(r, "vocoder", None) is not None:     # a neural vocoder, not Griffin-Lim
            vocoder = self._vocoder(r.vocoder)
            audio = run_vocoder(vocoder.run, images, family.mel, r.vocoder_gain_db, r.seed)
            rate = vocoder.sample_rate
        if kind == "mel-unet" and init is None and noise is None:
            audio = audio[:, :max(1, round(r.seconds * rate))]     # whole slices, cropped
        if getattr(r, "loop", 0):           # whole bars at the tracked beat, tiled
            from data.beats import make_loop  # scipy's beat tracking: only loops need it
            try:
                audio = np.stack([make_loop(clip, rate, r.loop) for clip in audio])
            except ValueError as e:
                raise ValueError(f"loop: {e}") from None
        steps = scheduler.start_index(r.strength) + 1 if init is not None \
            else scheduler.num_inference_steps
        return audio, images, rate, steps, self._info(r, cond, shape)

    def _start(self, r):
        """(conditioning, x_T's shape, seconds of audio, x₀ of from_audio or None)."""
        params, family, model = self.run
        kind, rate = self.accepts.kind, params.data.sample_rate
        source = None if getattr(r, "from_audio", None) is None else \
            self._audio(r.from_audio, "from_audio")
        seconds = getattr(r, "seconds", None)
        if kind in ("class", "mel-unet") and r.label is not None:
            cond = family.class_condition(list(r.label), *(
                [r.guidance] if kind == "mel-unet" else []))
        elif kind == "vocoder":
            cond = {"mel": tf.tile(tf.constant(self._mel(r.mel), tf.float32)[None],
                                   [r.num, 1, 1])}
        elif kind == "text":
            cond = {**family.text_condition(list(r.text)), "guidance": r.guidance}
        elif kind == "reconstruct":         # a DiffAE: the input's latent, decoded from noise
            cond, seconds = family.latent_condition(model, source, r.num), len(source) / rate
        else:
            cond = {}
        if kind == "mel-unet":              # whole images covering `seconds`, then cropped
            width = params.network.slice_samples
            seconds = math.ceil(round(seconds * rate) / width) * width / rate
        shape = family.sample_shape(r.num, seconds or 0.0, cond)
        init = None
        if source is not None and kind != "reconstruct":
            init = family.from_audio(source, r.num)
            shape = list(init.shape)
        return cond, shape, seconds, init

    def _denoiser(self, r, cond, shape):
        """A long DiffWave clip's chunked denoiser (exact: the halo covers the receptive
        field), else None (the family's own, with its compiled step)."""
        model, rate = self.model, self.sample_rate
        chunk = int(getattr(r, "chunk_seconds", 0) * rate)
        if not chunk or not hasattr(model, "receptive_field") or shape[1] <= 2 * chunk or \
                "mel" in cond:
            return None
        return chunked(self.family.denoiser(model, cond), chunk, (model.receptive_field - 1) // 2)

    def _audio(self, audio, argument: str) -> np.ndarray:
        """Mono samples at the run's rate from a path or an array (checked by requests.py)."""
        if isinstance(audio, (str, os.PathLike)):
            try:
                audio = read_mono(os.fspath(audio), self.sample_rate)   # AudioError: ValueError
            except (ValueError, OSError) as e:
                raise ValueError(f"{argument}: {e}") from None
        audio = np.asarray(audio, np.float32)
        if not np.all(np.isfinite(audio)):
            raise ValueError(f"{argument}: holds NaN or infinite samples")
        return audio

    def _mel(self, mel):
        """A vocoder's log-mel from an array, a .npy, or an audio file levelled as in training."""
        if not isinstance(mel, str):
            return mel
        params = self.params
        n = params.network
        try:
            return read_log_mel(mel, params.data.sample_rate, n.hop_length, n.n_mels,
                                params.data)
        except (ValueError, OSError) as e:          # AudioError is a ValueError
            raise ValueError(f"mel: {e}") from None

    def _noise(self, r, shape):
        noise = getattr(r, "noise", None)
        if noise is None:
            return None
        noise = np.load(noise) if isinstance(noise, (str, os.PathLike)) else noise
        noise = np.asarray(noise, np.float32)
        if list(noise.shape) != list(shape):
            raise ValueError(f"noise: x_T must be {list(shape)} (num, seconds), got "
                             f"{list(noise.shape)}")
        return noise

    def _info(self, r, cond, shape) -> str | None:
        kind = self.accepts.kind
        if kind == "mel-unet" and r.label is not None:
            labels = r.label[0] if len(set(r.label)) == 1 else list(r.label)
            return f"label {labels}, guidance {cond.get('guidance', 1.0):g}"
        if kind == "text":
            text = r.text[0] if len(set(r.text)) == 1 else list(r.text)
            return (f"text: {text!r}, guidance {r.guidance:g}, latent {list(shape[1:])}, "
                    f"decoder {r.decode_steps} V steps")
        return None

    def _vocoder(self, vocoder) -> "Pipeline":
        """`vocoder` (a path or a Pipeline) as a vocoder Pipeline checked against this run's
        Mel; loaded once per path."""
        if isinstance(vocoder, (str, os.PathLike)):
            key = os.path.abspath(vocoder)
            if key not in self._vocoders:
                try:
                    self._vocoders[key] = Pipeline.from_pretrained(vocoder)
                except ValueError as e:
                    raise ValueError(f"vocoder: {e}") from None
            vocoder = self._vocoders[key]
        if not isinstance(vocoder, Pipeline):
            raise ValueError(f"vocoder: give a mel-conditioned DiffWave run (its path or "
                             f"Pipeline), got {type(vocoder).__name__}")
        if vocoder.run is None or vocoder.accepts.kind != "vocoder":
            raise ValueError(f"vocoder: {vocoder.path} is {vocoder.accepts.what}, not a "
                             f"mel-conditioned DiffWave run directory")
        params, family, _ = self.run
        try:
            load_vocoder(vocoder.path, params, family, lambda *a, **k: vocoder.run)
        except ValueError as e:
            raise ValueError(f"vocoder: {e}") from None
        return vocoder

    def check_vocoder(self, vocoder) -> "Pipeline":
        """The vocoder Pipeline of `vocoder` for this run, loaded and checked now."""
        return self._vocoder(vocoder)


def run_accepts(path: str, params, family) -> Accepts:
    """What a run directory's family takes (its samplers, T, classes, guidance, mel bands)."""
    n, model = params.network, params.model
    kinds = {"diffwave": {"none": "waveform", "class": "class", "mel": "vocoder"},
             "mel-unet": {"none": "mel-unet", "class": "mel-unet"}, "diffgen": {"text": "text"},
             "diffae": {"audio": "reconstruct"}}
    kind = kinds.get(model, {}).get(family.conditioning)
    if kind is None:
        raise ValueError(f"{path}: a {model} run with {family.conditioning} conditioning does "
                         f"not sample (the Python API takes diffwave, mel-unet, diffgen and "
                         f"diffae runs)")
    classes = n.num_classes if family.conditioning == "class" else 0
    what = {"waveform": "an unconditional diffwave run", "class": "a class-conditional "
            "diffwave run", "vocoder": "a mel vocoder (mel-conditioned diffwave run)",
            "mel-unet": f"{'a class-conditional' if classes else 'an unconditional'} "
            "mel-unet run", "text": "a text-to-audio (diffgen) run",
            "reconstruct": "a diffusion autoencoder (diffae run)"}[kind]
    guided = kind == "text" or (kind == "mel-unet" and bool(classes and n.cfg_drop))
    return Accepts(path, what, kind, tuple(family.samplers), family.default_sampler,
                   params.diffusion.num_steps,
                   num_classes=classes,
                   guided=guided, guidance=float(getattr(n, "guidance", 1.0)) if guided else 1.0,
                   n_mels=n.n_mels if kind == "vocoder" else 0)
