"""Audio diffusion in TensorFlow/Keras: DiffWave, mel-UNet and text-to-audio families on one
diffusion core. The Python API (docs/python-api.md):

    import diffusion
    pipe = diffusion.Pipeline.from_pretrained("pretrained/digits")
    out = pipe(num=2, seconds=1, seed=0, label=[3, 7])      # out.audio, out.sample_rate

`import diffusion` stays light: Pipeline and Output load TensorFlow on first use.
"""
from diffusion.requests import (
    Accepts,
    MelRequest,
    Request,
    TextRequest,
    VocoderRequest,
    WaveformRequest,
    make_request,
)

__all__ = ["Accepts", "MelRequest", "Output", "Pipeline", "Request", "TextRequest",
           "VocoderRequest", "WaveformRequest", "make_request"]


def __getattr__(name: str):
    if name in ("Pipeline", "Output"):
        from diffusion import pipeline  # TensorFlow's start-up: only when asked for
        return getattr(pipeline, name)
    raise AttributeError(f"module 'diffusion' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
