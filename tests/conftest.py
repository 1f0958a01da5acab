"""Makes the repository root importable, keeps TensorFlow quiet, gates tests/parity."""
import importlib.util
import os
import sys
import types
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


# tests/parity (make parity, in .venv-torch): collected only where torch and every original
# import, so `make test` (the main venv) never sees them. torchaudio: lmnt's diffwave.inference
# and audio_diffusion_pytorch.components import it at the top, but only lmnt's WAV writer and
# Moûsai's MelSpectrogram use it, which no test calls; no torchaudio release matches torch 2.13
# (PyPI's pull a CUDA torch), so a stub module stands in. (One conftest only: a second module
# named conftest would shadow this one's helpers for `from conftest import …`.)
PARITY_ORIGINALS = ("torch", "diffwave", "diffusers", "audiodiffusion", "audio_diffusion_pytorch",
                    "a_unet", "librosa")
if any(importlib.util.find_spec(name) is None for name in PARITY_ORIGINALS):
    collect_ignore = ["parity"]                  # not .venv-torch (make bench-venv)
elif importlib.util.find_spec("torchaudio") is None:
    _stub = types.ModuleType("torchaudio")
    _stub.transforms = types.ModuleType("torchaudio.transforms")
    _stub.transforms.Spectrogram = _stub.transforms.MelScale = None
    _stub.save = _stub.load = None
    sys.modules["torchaudio"] = _stub
    sys.modules["torchaudio.transforms"] = _stub.transforms


def linked_audio_dir(root: Path, files) -> Path:
    """root/audio holding symlinks to `files` (a small real-audio dataset without copies)."""
    directory = root / "audio"
    directory.mkdir()
    for f in files:
        (directory / f.name).symlink_to(f)
    return directory
