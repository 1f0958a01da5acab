"""Makes the repository root importable and keeps TensorFlow quiet."""
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def linked_audio_dir(root: Path, files) -> Path:
    """root/audio holding symlinks to `files` (a small real-audio dataset without copies)."""
    directory = root / "audio"
    directory.mkdir()
    for f in files:
        (directory / f.name).symlink_to(f)
    return directory
