"""Finding the audio of a data set: a directory (recursive) or a metadata.jsonl, probed up front.

Unusable files are skipped and reported (count + path + reason); a source with nothing usable,
or a metadata file that cannot be read, is a DataError naming the file. Files read only in part
(a truncated or streamed WAV, a compressed file damaged mid-way) follow data.recover: used with
a warning in the report's `notes` (warn), skipped (skip) or a DataError (error); files read in
an unusual way (RF64, libsndfile after tensorflow-io failed) are listed there too.
metadata.jsonl: one JSON object per line with `path` (relative to the file's directory) and
optional `label` (int), `label_name`, `caption` (str).
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from data.audio_io import (
    AUDIO_EXTENSIONS,
    AudioError,
    AudioInfo,
    RateError,
    accepted_formats,
    probe,
)


class DataError(ValueError):
    """Bad or unusable input data; the message names the file or directory."""


@dataclasses.dataclass(frozen=True)
class Source:
    info: AudioInfo
    label: int = -1        # -1: no label
    caption: str = ""

    @property
    def path(self) -> str:
        return self.info.path


@dataclasses.dataclass
class SourceReport:
    origin: str
    sources: list
    skipped: list = dataclasses.field(default_factory=list)   # [(path, reason)]
    notes: list = dataclasses.field(default_factory=list)     # [(path, what was recovered)]

    @property
    def seconds(self) -> float:
        return sum(s.info.seconds for s in self.sources)

    def skip(self, path, reason):
        self.skipped.append((str(path), reason))

    def recovered(self, path, note: str, policy: str) -> bool:
        """A file read only in part: True to use it (data.recover=warn: noted), else skipped
        (skip) or a DataError (error)."""
        if policy == "error":
            raise DataError(f"{path}: {note}; set data.recover=warn to use what is there "
                            f"(or skip)")
        if policy == "skip":
            self.skip(path, f"{note} (data.recover=skip)")
            return False
        self.notes.append((str(path), note))
        return True

    def summary(self, limit: int = 10) -> str:
        labels = {s.label for s in self.sources if s.label >= 0}
        lines = [f"data: {len(self.sources)} files, {self.seconds:.1f} s of audio from "
                 f"{self.origin}" + (f", {len(labels)} labels" if labels else "")
                 + (f"; skipped {len(self.skipped)}" if self.skipped else "")]
        for path, reason in self.skipped[:limit]:
            lines.append(f"  skipped {path}: {reason}")
        if len(self.skipped) > limit:
            lines.append(f"  … and {len(self.skipped) - limit} more skipped")
        for path, note in self.notes[:limit]:
            lines.append(f"  warning {path}: {note}")
        if len(self.notes) > limit:
            lines.append(f"  … and {len(self.notes) - limit} more warnings")
        return "\n".join(lines)


def _probe_or_skip(report: SourceReport, path: Path, decoder: str, recover: str, **meta):
    try:
        info = probe(str(path), decoder)
    except RateError as e:
        raise DataError(str(e)) from None
    except AudioError as e:
        report.skip(path, str(e).split(": ", 1)[-1])
        return
    if info.damaged and not report.recovered(path, info.note, recover):
        return
    if info.note and not info.damaged:
        report.notes.append((str(path), info.note))
    report.sources.append(Source(info, **meta))


def _read_metadata(jsonl: Path, report: SourceReport, decoder: str, recover: str):
    try:
        lines = jsonl.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{jsonl}: cannot read metadata ({e.__class__.__name__})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rel = row["path"]
            label = row.get("label")
            label = -1 if label is None else int(label)
            caption = row.get("caption") or ""
            if not isinstance(rel, str) or not isinstance(caption, str) or label < -1:
                raise ValueError
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise DataError(f"{jsonl}:{number}: expected a JSON object with a string 'path', "
                            f"an optional int 'label' >= 0 and string 'caption'") from None
        path = (jsonl.parent / rel)
        if not path.is_file():
            report.skip(path, "listed in metadata but missing")
            continue
        _probe_or_skip(report, path, decoder, recover, label=label, caption=caption)


def find_sources(data, decoder: str = "auto", recover: str = "warn") -> SourceReport:
    """Lists and probes the audio of `data`: a .jsonl file, or a directory (its
    metadata.jsonl when it has one at the top, else every audio file below it).
    `decoder` is the backend preference of data.audio_io.probe; `recover` is data.recover."""
    data = Path(data)
    if not data.exists():
        raise DataError(f"{data}: no such file or directory")
    if data.is_dir() and (data / "metadata.jsonl").is_file():
        data = data / "metadata.jsonl"
    report = SourceReport(origin=str(data), sources=[])
    if data.is_file():
        if data.suffix != ".jsonl":
            raise DataError(f"{data}: expected a directory of audio or a metadata .jsonl file")
        _read_metadata(data, report, decoder, recover)
    other = []                              # files whose extension is not an audio format's
    if data.is_dir():
        for root, dirs, files in os.walk(data):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "cache")
            for name in sorted(files):
                if name.lower().endswith(AUDIO_EXTENSIONS):
                    _probe_or_skip(report, Path(root) / name, decoder, recover)
                elif not name.startswith("."):
                    other.append(str(Path(root) / name))
    if not report.sources:
        raise DataError(_no_usable_audio(data, report, other))
    return report


def _no_usable_audio(data, report: SourceReport, other: list, limit: int = 10) -> str:
    """One line: what was skipped, which files were not even tried (by extension), and the
    formats that are accepted."""
    detail = f" ({len(report.skipped)} files skipped, e.g. {report.skipped[0][0]}: " \
             f"{report.skipped[0][1]})" if report.skipped else ""
    if other:
        detail += f"; {len(other)} files of unsupported type: {', '.join(other[:limit])}" + \
                  (f" and {len(other) - limit} more" if len(other) > limit else "")
    return f"{data}: no usable audio{detail}; {accepted_formats()}"
