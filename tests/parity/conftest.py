"""Parity with the PyTorch originals (`make parity`, in .venv-torch).

Without torch and the originals (the main venv, `make test`) nothing here is collected. With
them, every test builds an original with random weights in-process, saves it in its native
format, converts or mirrors it, and compares on the same inputs; each prints
`PARITY <what>: max … error …`.

torchaudio: lmnt's diffwave.inference and audio_diffusion_pytorch.components import it at the
top, but only lmnt's WAV writer and Moûsai's MelSpectrogram use it, which no test calls. No
torchaudio release matches torch 2.13 (and PyPI's pull a CUDA torch), so a stub module stands in.
"""
import importlib.util
import sys
import types

ORIGINALS = ("torch", "diffwave", "diffusers", "audiodiffusion", "audio_diffusion_pytorch",
             "a_unet", "librosa")
if any(importlib.util.find_spec(name) is None for name in ORIGINALS):
    collect_ignore_glob = ["test_*.py"]          # not .venv-torch (make bench-venv)
elif importlib.util.find_spec("torchaudio") is None:
    stub = types.ModuleType("torchaudio")
    stub.transforms = types.ModuleType("torchaudio.transforms")
    stub.transforms.Spectrogram = stub.transforms.MelScale = None
    stub.save = stub.load = None
    sys.modules["torchaudio"] = stub
    sys.modules["torchaudio.transforms"] = stub.transforms

