"""Mel-spectrogram images ↔ audio: the `Mel` of teticio/audio-diffusion (and of diffusers'
AudioDiffusionPipeline), in TF ops.

    mel = Mel()                                   # x_res 256, y_res 256, 22050 Hz, hop 512
    mel.load_audio("song.flac")                   # mono, resampled to 22050 Hz, zero-padded
    image = mel.audio_slice_to_image(0)           # uint8 [y_res, x_res]
    audio = mel.image_to_audio(image)             # float32 [x_res·hop − 1], Griffin-Lim

Forward (as librosa.feature.melspectrogram + power_to_db, librosa ≥ 0.10 defaults):
  one slice = x_res·hop − 1 samples, so centred frames (zero padding of n_fft/2 each side,
  periodic Hann window) give exactly x_res frames;  S = M·|STFT|², M the Slaney mel filterbank;
  dB = max(10·log10(max(S, 1e-10)/max(S_max, 1e-10)), −top_db)   (ref = the image's max);
  pixel = round(clip((dB + top_db)·255/top_db, 0, 255)).
Image orientation follows teticio exactly: their image is Image.fromarray of the (n_mels, frames)
array, unflipped, so ROW 0 IS THE LOWEST MEL BAND (it shows at the top) and column = time.
Inverse: dB = pixel·top_db/255 − top_db, S = 10^(dB/10); linear power = non-negative least
squares of M·X = S (clipped pseudo-inverse start + projected FISTA steps, like librosa's
mel_to_stft); magnitude = √X; fast Griffin-Lim (momentum 0.99, random initial phase, as
librosa.griffinlim) with an exact inverse STFT (OLA of Hann-windowed frames ÷ Σ window²).
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import tensorflow as tf

from data import audio_io
from data.filters import resample

CONFIG_NAME = "mel_config.json"        # diffusers' file name for the same config
AMIN = 1e-10                           # power_to_db floor
NNLS_STEPS = 50                        # projected-gradient refinements of the mel inversion
MOMENTUM = 0.99                        # fast Griffin-Lim (Perraudin et al.), librosa's default

# Slaney mel scale (librosa htk=False): linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3                      # Hz per mel in the linear part
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP     # = 15
_LOGSTEP = math.log(6.4) / 27.0        # log-Hz per mel above 1 kHz


def hz_to_mel(hz):
    """Slaney: m = f/(200/3) below 1 kHz, 15 + ln(f/1000)/(ln 6.4/27) above."""
    hz = np.asarray(hz, np.float64)
    log_part = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log_part, hz / _F_SP)


def mel_to_hz(mel):
    """Inverse of hz_to_mel."""
    mel = np.asarray(mel, np.float64)
    log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log_part, mel * _F_SP)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """librosa.filters.mel defaults (Slaney scale, Slaney norm): float32 [n_mels, 1 + n_fft/2].

    Band i is the triangle over mel points f_i, f_i+1, f_i+2 (n_mels + 2 points equally spaced
    in mel from fmin to fmax), peak at f_i+1, scaled by 2/(f_i+2 − f_i) so its area is 1 (Hz).
    """
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    bins = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
    points = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = points[:-2, None], points[1:-1, None], points[2:, None]
    rising = (bins - lo) / (mid - lo)
    falling = (hi - bins) / (hi - mid)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (hi - lo))
    return weights.astype(np.float32)


class FilterbankInverse:
    """X ≥ 0 minimising ½‖X·Mᵀ − S‖² for a non-negative filterbank M [mels, bins] and
    S [..., frames, mels]: from the clipped pseudo-inverse S·(M⁺)ᵀ, `steps` projected Nesterov
    (FISTA) steps X ← max(Y − (Y·Mᵀ − S)·M·D, 0), D = diag(1/(MᵀM·1)) (like librosa's
    mel_to_stft). Serves power (Mel) and magnitude (DiffWave log-mel) filterbanks alike."""

    def __init__(self, basis):
        basis = np.asarray(basis, np.float64)
        self.basis_t = tf.constant(basis.T, tf.float32)                       # Mᵀ [bins, mels]
        self._basis = tf.constant(basis, tf.float32)                          # M [mels, bins]
        self._pinv_t = tf.constant(np.linalg.pinv(basis).T, tf.float32)      # (M⁺)ᵀ
        # Per-bin step 1/(MᵀM·1)_k: diag(MᵀM·1) ⪰ MᵀM for M ≥ 0, a valid majoriser.
        self._step = tf.constant(1.0 / np.maximum(basis.T @ basis.sum(axis=1), 1e-12),
                                 tf.float32)

    def __call__(self, target, steps=NNLS_STEPS):
        target = tf.cast(target, tf.float32)                                    # [..., t, mels]
        x = tf.nn.relu(tf.matmul(target, self._pinv_t))
        y, t = x, 1.0
        for _ in range(steps):                                                  # static, small
            grad = tf.matmul(tf.matmul(y, self.basis_t) - target, self._basis)
            x_next = tf.nn.relu(y - grad * self._step)
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            y, x, t = x_next + ((t - 1.0) / t_next) * (x_next - x), x_next, t_next
        return x


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Mel: {name} must be a positive integer, got {value!r}")
    return int(value)


class Mel:
    """Audio slices ↔ uint8 mel-spectrogram images [y_res (mel bands), x_res (frames)]."""

    PARAMS = ("x_res", "y_res", "sample_rate", "n_fft", "hop_length", "top_db", "n_iter")

    def __init__(self, x_res=256, y_res=256, sample_rate=22050, n_fft=2048, hop_length=512,
                 top_db=80, n_iter=32):
        self.x_res = _positive_int("x_res", x_res)
        self.y_res = self.n_mels = _positive_int("y_res", y_res)
        self.sr = _positive_int("sample_rate", sample_rate)
        self.n_fft = _positive_int("n_fft", n_fft)
        self.hop_length = _positive_int("hop_length", hop_length)
        self.n_iter = _positive_int("n_iter", n_iter)
        if isinstance(top_db, bool) or not isinstance(top_db, (int, float)) or \
                not 0 < top_db < math.inf:
            raise ValueError(f"Mel: top_db must be a positive number, got {top_db!r}")
        if self.hop_length > self.n_fft:
            raise ValueError(f"Mel: hop_length {hop_length} > n_fft {n_fft} cannot be inverted")
        self.top_db = top_db
        self.slice_size = self.x_res * self.hop_length - 1      # → exactly x_res centred frames
        self.audio = None
        self._inverse = FilterbankInverse(mel_filterbank(self.sr, self.n_fft, self.n_mels))
        self._images_fn = tf.function(self._audio_to_pixels, reduce_retracing=True)
        self._audio_fn = tf.function(self.pixels_to_audio, reduce_retracing=True)
        self._gl_fn = tf.function(self._griffin_lim, reduce_retracing=True)

    # -- config ----------------------------------------------------------------------------
    def get_config(self) -> dict:
        return {"x_res": self.x_res, "y_res": self.y_res, "sample_rate": self.sr,
                "n_fft": self.n_fft, "hop_length": self.hop_length, "top_db": self.top_db,
                "n_iter": self.n_iter}

    def save_config(self, directory) -> str:
        """Writes `directory/mel_config.json` (diffusers-compatible keys); returns its path."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, CONFIG_NAME)
        with open(path, "w") as f:
            json.dump({"_class_name": "Mel", **self.get_config()}, f, indent=2)
        return path

    @classmethod
    def from_params(cls, params) -> "Mel":
        """The Mel of a mel-unet or mel-vae run (network.x_res … n_iter, data.sample_rate)."""
        n = params.network
        return cls(n.x_res, n.y_res, params.data.sample_rate, n.n_fft, n.hop_length, n.top_db,
                   n.n_iter)

    def batch_images(self, batch):
        """Audio slices [B, x_res·hop − 1, 1] (or stored uint8 images [B, y_res, x_res] from
        `python -m data.mel_images`) → images [B, y_res, x_res, 1] in [−1, 1], in-graph."""
        if "image" in batch:
            pixels = batch["image"]
        else:
            pixels = self._audio_to_pixels(batch["audio"][..., 0])
        return tf.cast(pixels, tf.float32)[..., None] / 127.5 - 1.0

    @classmethod
    def from_config(cls, directory) -> "Mel":
        """Reads `directory/mel_config.json` (or a JSON file path); keys starting with _ are
        ignored (diffusers writes _class_name, _diffusers_version), any other unknown is an error."""
        path = directory if os.path.isfile(directory) else os.path.join(directory, CONFIG_NAME)
        try:
            with open(path) as f:
                config = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read Mel config ({e})") from None
        if not isinstance(config, dict):
            raise ValueError(f"{path}: Mel config must be a JSON object")
        config = {k: v for k, v in config.items() if not k.startswith("_")}
        unknown = sorted(set(config) - set(cls.PARAMS))
        if unknown:
            raise ValueError(f"{path}: unknown Mel config key(s) {', '.join(unknown)}")
        return cls(**config)

    # -- audio -----------------------------------------------------------------------------
    def load_audio(self, audio_file=None, raw_audio=None):
        """Loads a file (any rate/channels: mono mix, resampled) or raw audio at sample_rate
        ([T] or [T, C]). As teticio's Mel: audio shorter than one slice is zero-padded to one;
        longer audio keeps its tail, which get_number_of_slices() (whole slices) leaves out."""
        if (audio_file is None) == (raw_audio is None):
            raise ValueError("load_audio: give exactly one of audio_file or raw_audio")
        name = "raw_audio"
        if audio_file is not None:
            name = os.fspath(audio_file)
            try:
                audio, rate = audio_io.read(name)
            except ValueError as e:                     # AudioError: already names the file
                raise ValueError(str(e) if name in str(e) else f"{name}: {e}") from None
            except Exception as e:                       # noqa: BLE001 — report, naming the file
                raise ValueError(f"{name}: cannot load audio ({e})") from None
        else:
            audio, rate = np.asarray(raw_audio), self.sr
            if audio.dtype.kind not in "fiu" or audio.ndim not in (1, 2):
                raise ValueError(f"raw_audio must be a real array [T] or [T, C], got "
                                 f"{audio.dtype} {audio.shape}")
        audio = audio.astype(np.float32).reshape(len(audio), -1).mean(axis=1)   # mono mix
        if audio.size == 0:
            raise ValueError(f"{name}: no audio samples")
        if not np.all(np.isfinite(audio)):
            raise ValueError(f"{name}: audio contains NaN or infinite samples")
        if rate != self.sr:
            audio = resample(audio, rate, self.sr).numpy()
        self.audio = np.pad(audio, (0, max(0, self.slice_size - len(audio))))

    def get_number_of_slices(self) -> int:
        return len(self._loaded()) // self.slice_size

    def get_audio_slice(self, slice=0) -> np.ndarray:  # noqa: A002 — teticio's name
        count = self.get_number_of_slices()
        if not 0 <= slice < count:
            raise ValueError(f"slice {slice} out of range: the audio has {count} slice(s)")
        return self.audio[self.slice_size * slice: self.slice_size * (slice + 1)]

    def get_sample_rate(self) -> int:
        return self.sr

    def _loaded(self):
        if self.audio is None:
            raise ValueError("no audio loaded: call load_audio first")
        return self.audio

    # -- audio → image ---------------------------------------------------------------------
    def audio_slice_to_image(self, slice) -> np.ndarray:  # noqa: A002
        """uint8 [y_res, x_res]; row 0 = lowest mel band (teticio's unflipped array)."""
        return self.audio_to_images(self.get_audio_slice(slice))

    def audio_to_images(self, audio) -> np.ndarray:
        """[slice_size] or [B, slice_size] float audio → uint8 [(B,) y_res, x_res]."""
        audio = np.asarray(audio, np.float32)
        if audio.shape[-1] != self.slice_size or audio.ndim not in (1, 2):
            raise ValueError(f"audio slices must be [(B,) {self.slice_size}], got {audio.shape}")
        images = self._images_fn(tf.constant(audio.reshape(-1, self.slice_size))).numpy()
        return images.reshape(audio.shape[:-1] + images.shape[1:])

    def mel_power(self, audio):
        """Mel power spectrogram M·|STFT|²: [..., T] → [..., n_mels, frames] (float32)."""
        spec = self._stft(tf.convert_to_tensor(audio, tf.float32))
        power = tf.math.real(spec * tf.math.conj(spec))                     # |X|²
        return tf.linalg.matrix_transpose(tf.matmul(power, self._inverse.basis_t))

    def power_to_pixels(self, power):
        """power_to_db(ref=max over each image, top_db) then the byte scale, in float64."""
        power = tf.cast(power, tf.float64)
        ref = tf.reduce_max(power, axis=[-2, -1], keepdims=True)
        db = 10.0 * (tf.math.log(tf.maximum(power, AMIN)) -
                     tf.math.log(tf.maximum(ref, AMIN))) / math.log(10.0)
        db = tf.maximum(db, tf.reduce_max(db, axis=[-2, -1], keepdims=True) - self.top_db)
        scaled = tf.clip_by_value((db + self.top_db) * 255.0 / self.top_db, 0.0, 255.0)
        return tf.cast(tf.floor(scaled + 0.5), tf.uint8)

    def _audio_to_pixels(self, audio):
        return self.power_to_pixels(self.mel_power(audio))

    # -- image → audio ---------------------------------------------------------------------
    def image_to_audio(self, image, n_iter=None, seed=0) -> np.ndarray:
        """uint8 [(B,) y_res, W] (numpy, or anything np.asarray takes) → float32
        [(B,) W·hop − 1] audio: mel inversion + Griffin-Lim with n_iter (default self.n_iter)
        iterations from a random phase drawn with `seed`."""
        image = np.asarray(image)
        if image.ndim not in (2, 3) or image.shape[-2] != self.y_res:
            raise ValueError(f"image must be [(B,) {self.y_res}, width], got {image.shape}")
        n_iter = self.n_iter if n_iter is None else int(n_iter)
        if n_iter < 0:
            raise ValueError(f"n_iter must be ≥ 0, got {n_iter}")
        pixels = tf.constant(image.reshape((-1,) + image.shape[-2:]), tf.float32)
        audio = self._audio_fn(pixels, tf.constant(n_iter), tf.constant(seed, tf.int64)).numpy()
        return audio.reshape(image.shape[:-2] + audio.shape[-1:])

    def mel_to_magnitude(self, mel_power, steps=NNLS_STEPS):
        """Linear magnitude [..., frames, bins] from mel power [..., n_mels, frames]: √X for
        the X ≥ 0 with M·X ≈ S (FilterbankInverse)."""
        return tf.sqrt(self._inverse(tf.linalg.matrix_transpose(mel_power), steps))

    def pixels_to_audio(self, pixels, n_iter, seed):
        """Pixels (float, 0…255) [B, y_res, W] → audio by Griffin-Lim, in TF ops (the mel
        SavedModel runs this in its graph; image_to_audio is the NumPy-facing wrapper)."""
        db = pixels * (self.top_db / 255.0) - self.top_db
        power = tf.pow(10.0, db / 10.0)                                         # db_to_power
        magnitude = self.mel_to_magnitude(power)
        return self._griffin_lim(magnitude, n_iter, seed)

    def griffin_lim(self, magnitude, n_iter=None, seed=0) -> np.ndarray:
        """Audio [..., frames·hop − 1] whose STFT magnitude approximates `magnitude`
        [..., frames, 1 + n_fft/2] (for testing Griffin-Lim without the mel bottleneck)."""
        n_iter = self.n_iter if n_iter is None else int(n_iter)
        return self._gl_fn(tf.convert_to_tensor(magnitude, tf.float32), tf.constant(n_iter),
                           tf.constant(seed, tf.int64)).numpy()

    def _griffin_lim(self, magnitude, n_iter, seed):
        """Fast Griffin-Lim as librosa.griffinlim: rebuilt = STFT(iSTFT(|S|·e^{iφ})), next
        e^{iφ} = phase of (rebuilt − α/(1+α)·previous rebuilt), α = MOMENTUM; φ₀ uniform."""
        length = magnitude.shape[-2] * self.hop_length - 1          # static: fixed loop shapes
        phase = tf.random.stateless_uniform(tf.shape(magnitude), tf.stack([seed, 0]),
                                            maxval=2 * math.pi)
        mag = tf.complex(magnitude, tf.zeros_like(magnitude))
        angles = tf.complex(tf.cos(phase), tf.sin(phase))
        rebuilt = tf.zeros_like(angles)
        for _ in tf.range(n_iter):
            previous = rebuilt
            rebuilt = self._stft(self._istft(mag * angles, length))
            angles = rebuilt - (MOMENTUM / (1.0 + MOMENTUM)) * previous
            angles = angles / tf.cast(tf.abs(angles) + 1e-16, tf.complex64)
        return self._istft(mag * angles, length)

    # -- centred STFT pair (librosa center=True, pad_mode="constant") --------------------------
    def _stft(self, audio):
        """[..., T] → complex [..., 1 + T//hop, 1 + n_fft/2], frame t centred on sample t·hop."""
        half = self.n_fft // 2
        padded = tf.pad(audio, [[0, 0]] * (len(audio.shape) - 1) + [[half, half]])
        return tf.signal.stft(padded, self.n_fft, self.hop_length, self.n_fft,
                              window_fn=tf.signal.hann_window, pad_end=False)

    def _istft(self, spec, length):
        """Exact inverse of _stft: Σ_t w·irfft(X_t) shifted by t·hop, ÷ Σ_t w² (where > 0),
        centre padding removed, `length` samples."""
        signal = tf.signal.inverse_stft(spec, self.n_fft, self.hop_length, self.n_fft,
                                        window_fn=tf.signal.hann_window)
        frames = tf.shape(spec)[-2]
        window_sq = tf.square(tf.signal.hann_window(self.n_fft))
        norm = tf.signal.overlap_and_add(tf.tile(window_sq[None], [frames, 1]), self.hop_length)
        signal = signal / tf.where(norm > 1e-10, norm, 1.0)
        return signal[..., self.n_fft // 2: self.n_fft // 2 + length]
