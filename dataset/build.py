#!/usr/bin/env python3
"""Build the bundled real-audio dataset (Bach chorale excerpts and spoken digits).

    .venv-build/bin/python dataset/build.py [--out dataset/] [--only chorales|digits] [--seed 0]

Each set is written into a temporary directory next to its destination and moved
into place only when it is complete, so a failed run never leaves half a dataset.
See dataset/ATTRIBUTION.md for sources, licences and the packages this needs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True           # keep dataset/ free of __pycache__
sys.path.insert(0, str(HERE))

try:
    from build_common import BuildError, write_jsonl
except ImportError as exc:
    sys.exit(f"error: {exc}; install the build packages with "
             ".venv-build/bin/pip install -r dataset/requirements-build.txt")

SETS = ("chorales", "digits")
# Default clip counts, chosen so that dataset/ stays under its 12 MB budget (about 143 kB per
# chorale clip and 17 kB per digit clip); the minimums are 40 chorales and 30 per digit.
DEFAULT_COUNTS = {"chorales": 42, "digits": 33}


def build_set(name: str, out: Path, seed: int, count: int) -> int:
    # Imported lazily so that one set can be built without the other's dependencies.
    if name == "chorales":
        import build_chorales as module
    else:
        import build_digits as module
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-building-", dir=out))
    try:
        rows = module.build(staging, seed, count)
        write_jsonl(staging / "metadata.jsonl", rows)
        staging.chmod(0o755)                    # mkdtemp creates it private
        final, old = out / name, out / f".{name}-old"
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            final.rename(old)
        staging.rename(final)
        if old.exists():
            shutil.rmtree(old)
        return len(rows)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE, help="output directory (default: dataset/)")
    parser.add_argument("--only", choices=SETS, help="build only this set")
    parser.add_argument("--seed", type=int, default=0, help="seed for every random choice (default 0)")
    parser.add_argument("--count", type=int, default=None,
                        help=f"chorale clips, or clips per digit (default {DEFAULT_COUNTS['chorales']} / "
                             f"{DEFAULT_COUNTS['digits']})")
    args = parser.parse_args(argv)
    for name in [args.only] if args.only else SETS:
        start = time.monotonic()
        print(f"building {name} (seed {args.seed}) ...", flush=True)
        try:
            n = build_set(name, args.out, args.seed, args.count or DEFAULT_COUNTS[name])
        except BuildError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except ImportError as exc:
            print(f"error: {exc}; install the build packages with "
                  ".venv-build/bin/pip install -r dataset/requirements-build.txt", file=sys.stderr)
            return 1
        print(f"{name}: {n} clips in {time.monotonic() - start:.1f} s -> {args.out / name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
