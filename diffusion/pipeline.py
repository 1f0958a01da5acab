"""The Python API: a loaded model you call for clips (docs/python-api.md).

    pipe = Pipeline.from_pretrained("pretrained/digits")   # a run, pretrained/ or SavedModel
    out = pipe(num=2, seconds=1, seed=0, label=[3, 7])
    out.audio, out.sample_rate, out.labels;  out.save("out/")

One chain for every kind, as generate.py's: request (diffusion/requests.py, checked before any
work) → scheduler → conditioning → shape → sample → to_audio → vocoder → crop to `seconds`.
A Pipeline keeps its family and model, so the family's compiled sampling step is traced on
the first call only. An exported SavedModel runs its own in-graph loop (sampler fixed).
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from data.features import read_log_mel
from data.figures import save_clip_figure
from diffusion.core.consistency import Consistency
from diffusion.core.sampling import chunked
from diffusion.families.base import Request as DecodeRequest
from diffusion.families.mel.vocoder import load_vocoder, run_vocoder
from diffusion.families.registry import load_run
from diffusion.families.serving import is_saved_model, load_saved_model
from diffusion.requests import Accepts, Request, check_mel, make_request

PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"   # bundled models by name
CHUNK_SECONDS = 4.0                 # generate.py's --chunk-seconds: long DiffWave clips


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

    def save(self, directory) -> list[str]:
        """DIR/<name>_<i>.wav (16-bit PCM) and .png (waveform + log-mel, titled with the
        label or caption; data/figures.py) per clip, and a mel-UNet's image as _image.png;
        returns the WAV paths."""
        import soundfile as sf      # optional at import: only saving needs it
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
    WaveformRequest, VocoderRequest, MelRequest, TextRequest."""

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
            return cls(path, served_accepts(path, served), served=served)
        if not os.path.isfile(os.path.join(path, "params.json")):
            raise ValueError(f"{path}: not a run directory (params.json), a pretrained model or "
                             f"an exported SavedModel (saved_model.pb)")
        params, family, model = load_run(path, use_ema=use_ema)   # RunError: a ValueError
        accepts = run_accepts(path, params, family)
        family.load_frozen()                # a diffgen's DiffAE, loaded and checked now
        return cls(path, accepts, run=(params, family, model))

    def __repr__(self) -> str:
        return f"Pipeline({self.path!r}: {self.accepts.what})"

    @property
    def params(self):
        """The run's Params (params.py), or None for a SavedModel."""
        return self.run[0] if self.run else None

    @property
    def sample_rate(self) -> int:
        return self.served.sample_rate if self.served else self.run[0].data.sample_rate

    def request(self, **arguments) -> Request:
        """The checked request of `arguments` (ValueError naming the argument)."""
        return make_request(self.accepts, **arguments)

    def __call__(self, *, progress=None, **arguments) -> Output:
        """Clips for `arguments` (see the class); `progress(i, total)` after each sampling step
        (not for a SavedModel, whose loop is one graph call)."""
        r = self.request(**arguments)
        if self.served is not None:
            return self._served(r)
        vocoder = self._vocoder(r.vocoder) if getattr(r, "vocoder", None) is not None else None
        kind = self.accepts.kind
        if kind == "vocoder":
            audio, images, rate = self._vocode(r, progress)
        elif kind == "mel-unet":
            audio, images, rate = self._mel_unet(r, vocoder, progress)
        elif kind == "text":
            audio, images, rate = self._text(r, progress)
        else:
            audio, images, rate = self._waveform(r, progress)
        stem = os.path.basename(os.path.normpath(self.path))
        return Output(np.asarray(audio, np.float32), rate, getattr(r, "label", None),
                      getattr(r, "text", None), images, f"{stem}_{r.sampler}_seed{r.seed}")

    # --- run directories: the family's chain --------------------------------------------------
    def _sample(self, r, shape, cond, progress, **options):
        params, family, model = self.run
        scheduler = family.scheduler(r.sampler, r.steps, r.eta)
        return family.sample(model, scheduler, shape, cond, seed=r.seed, progress=progress,
                             **options).numpy()

    def _waveform(self, r, progress):
        params, family, model = self.run
        cond = family.class_condition(list(r.label)) if r.label is not None else {}
        shape = family.sample_shape(r.num, r.seconds, cond)
        rate, options = params.data.sample_rate, {}
        chunk = int(CHUNK_SECONDS * rate)
        if shape[1] > 2 * chunk:            # exact overlapping chunks (generate.py's)
            options["denoise"] = chunked(family.denoiser(model, cond), chunk,
                                         (model.receptive_field - 1) // 2)
        x = self._sample(r, shape, cond, progress, **options)
        return family.to_audio(x)[0], None, rate

    def _vocode(self, r, progress):
        params, family, _ = self.run
        n, rate = params.network, params.data.sample_rate
        mel = r.mel
        if isinstance(mel, str):            # .npy, or an audio file levelled as in training
            try:
                mel = read_log_mel(mel, rate, n.hop_length, n.n_mels, params.data)
            except (ValueError, OSError) as e:          # AudioError is a ValueError
                raise ValueError(f"mel: {e}") from None
        cond = {"mel": tf.tile(tf.constant(mel, tf.float32)[None], [r.num, 1, 1])}
        overrides = {"scale": r.consistency, "refine_steps": r.refine_steps}
        consistency = dataclasses.replace(Consistency.from_params(n), **{
            k: v for k, v in overrides.items() if v is not None})
        x = self._sample(r, family.sample_shape(r.num, 0.0, cond), cond, progress,
                         consistency=consistency)
        return family.to_audio(x)[0], None, rate

    def _mel_unet(self, r, vocoder, progress):
        params, family, _ = self.run
        rate, width = params.data.sample_rate, params.network.slice_samples
        length = max(1, round(r.seconds * rate))
        slices = -(-length // width)        # whole images covering `seconds`, then cropped
        cond = family.class_condition(list(r.label), r.guidance) if r.label is not None else {}
        x = self._sample(r, family.sample_shape(r.num, slices * width / rate, cond), cond,
                         progress)
        if vocoder is None:                 # Griffin-Lim
            audio, images = family.to_audio(x)
        else:
            images = family.to_images(x)
            audio = run_vocoder(vocoder, images, family.mel, seed=r.seed)
            rate = vocoder[0].data.sample_rate
        return audio[:, :max(1, round(r.seconds * rate))], images, rate

    def _text(self, r, progress):
        params, family, _ = self.run
        cond = {**family.text_condition(list(r.text)), "guidance": r.guidance}
        x = self._sample(r, family.sample_shape(r.num, r.seconds, cond), cond, progress)
        audio, _ = family.to_audio(x, DecodeRequest(r.num, r.seconds, r.seed, r.decode_steps))
        return audio, None, params.data.sample_rate

    def _vocoder(self, vocoder):
        """(params, family, model) of `vocoder` (a path or a Pipeline), checked against this
        run's Mel; loaded once per path."""
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
        loaded = lambda run_dir, use_ema=True: vocoder.run        # noqa: E731 (no reload)
        try:
            return load_vocoder(vocoder.path, params, family, loaded)
        except ValueError as e:
            raise ValueError(f"vocoder: {e}") from None

    # --- exported SavedModels: one graph call -------------------------------------------------
    def _served(self, r) -> Output:
        served, kind = self.served, self.accepts.kind
        rate, seed = served.sample_rate, tf.constant(r.seed, tf.int32)
        num = tf.constant(r.num, tf.int32)
        length = None if getattr(r, "seconds", None) is None else max(1, round(r.seconds * rate))
        if kind in ("waveform", "class"):
            inputs = {"num_samples": num, "length": tf.constant(length, tf.int32), "seed": seed}
            if kind == "class":
                inputs["label"] = tf.constant(r.label, tf.int32)
        elif kind == "vocoder":
            mel = r.mel
            if isinstance(mel, str):        # a .npy (requests.py refuses audio files here)
                try:
                    mel = check_mel(read_log_mel(mel, rate, 0, self.accepts.n_mels),
                                    self.accepts)
                except (ValueError, OSError) as e:
                    raise ValueError(f"mel: {e}") from None
            inputs = {"mel": tf.tile(tf.constant(mel)[None], [r.num, 1, 1]), "seed": seed}
        elif kind == "mel-unet":
            inputs = {"num_samples": num, "seed": seed}
            if r.label is not None:         # a class-conditional export
                inputs["label"] = tf.constant(r.label, tf.int32)
        else:
            inputs = {"text": tf.constant(list(r.text)), "seconds": tf.constant(r.seconds),
                      "seed": seed, "guidance": tf.constant(r.guidance, tf.float32)}
        try:
            out = served.function(**inputs)
        except tf.errors.InvalidArgumentError as e:   # an in-graph check: its message
            raise ValueError(graph_check_message(e.message or str(e), self.path)) from None
        audio = out["audio"].numpy()
        if kind == "mel-unet" and length is not None:
            if length > audio.shape[1]:
                raise ValueError(f"seconds: {self.path} makes {audio.shape[1] / rate:.2f} s "
                                 f"clips (fixed at export); ask for at most that")
            audio = audio[:, :length]
        images = out["images"].numpy() if "images" in out else None
        stem = os.path.basename(os.path.normpath(self.path))
        return Output(audio.astype(np.float32), rate, getattr(r, "label", None),
                      getattr(r, "text", None), images, f"{stem}_seed{r.seed}")


def graph_check_message(message: str, path: str) -> str:
    """An in-graph check's "label must be < 10" → "label: must be < 10 (PATH's check)", its
    first word the input's name (num_samples is num, length is seconds)."""
    found = re.search(r"assertion failed: \[([^\]]+)\]", message)
    if found is None:
        return f"{path}: {message.strip().splitlines()[-1]}"
    name, _, rest = found.group(1).partition(" ")
    name = {"num_samples": "num", "length": "seconds"}.get(name, name)
    return f"{name}: {rest} ({path}'s check)"


def run_accepts(path: str, params, family) -> Accepts:
    """What a run directory's family takes (its samplers, T, classes, guidance, mel bands)."""
    n, model = params.network, params.model
    kinds = {"diffwave": {"none": "waveform", "class": "class", "mel": "vocoder"},
             "mel-unet": {"none": "mel-unet", "class": "mel-unet"}, "diffgen": {"text": "text"}}
    kind = kinds.get(model, {}).get(family.conditioning)
    if kind is None:
        raise ValueError(f"{path}: a {model} run reconstructs audio (generate.py --from-audio); "
                         f"the Python API takes diffwave, mel-unet and diffgen runs")
    classes = n.num_classes if family.conditioning == "class" else 0
    what = {"waveform": "an unconditional diffwave run", "class": "a class-conditional "
            "diffwave run", "vocoder": "a mel vocoder (mel-conditioned diffwave run)",
            "mel-unet": f"{'a class-conditional' if classes else 'an unconditional'} "
            "mel-unet run", "text": "a text-to-audio (diffgen) run"}[kind]
    guided = kind == "text" or (kind == "mel-unet" and bool(classes and n.cfg_drop))
    return Accepts(path, what, kind, tuple(family.samplers), family.default_sampler,
                   params.diffusion.num_steps,
                   num_classes=classes,
                   guided=guided, guidance=float(getattr(n, "guidance", 1.0)) if guided else 1.0,
                   n_mels=n.n_mels if kind == "vocoder" else 0)


def served_accepts(path: str, served) -> Accepts:
    """What an exported SavedModel takes (serving.py's kinds; class counts are not saved)."""
    what = {"waveform": "an exported unconditional diffwave model", "class": "an exported "
            "class-conditional diffwave model", "vocoder": "an exported mel vocoder",
            "mel-unet": "an exported mel-unet model", "text": "an exported text-to-audio "
            "model"}.get(served.kind)
    if what is None:
        raise ValueError(f"{path}: an exported {served.kind} model, which the Python API does "
                         f"not take yet")
    labels = "label" in served.function.structured_input_signature[1]
    return Accepts(path, what, served.kind, num_classes=None if labels else 0,
                   guided=served.kind == "text", n_mels=served.n_mels or 0,
                   seconds=None if served.kind == "mel-unet" else 1.0, reads_audio=False)
