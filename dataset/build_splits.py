#!/usr/bin/env python3
"""Write the train / held-out lists of the bundled data that the pretrained models use.

    python dataset/build_splits.py   # → dataset/splits/{train,heldout}[-digits|-chorales].jsonl

Held out: the last 3 clips of each digit (indices 30–32, 30 clips) and the last 4 chorales
(4 clips). Both lists are metadata.jsonl files whose paths point into dataset/digits and
dataset/chorales, so `train.py --data dataset/splits/train.jsonl` trains on the rest and the
model cards' figures are measured on clips the models never saw.
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
HELDOUT_DIGIT_FROM = 30        # per-digit index: clips 30.. are held out
HELDOUT_CHORALES = 4           # the last N chorales are held out


def split_rows():
    train, heldout = [], []
    for line in (HERE / "digits" / "metadata.jsonl").read_text().splitlines():
        row = json.loads(line)
        index = int(row["path"].rsplit("_", 1)[1].split(".")[0])
        row["path"] = "../digits/" + row["path"]
        (heldout if index >= HELDOUT_DIGIT_FROM else train).append(row)
    chorales = [json.loads(line) for line in
                (HERE / "chorales" / "metadata.jsonl").read_text().splitlines()]
    for i, row in enumerate(chorales):
        row["path"] = "../chorales/" + row["path"]
        (heldout if i >= len(chorales) - HELDOUT_CHORALES else train).append(row)
    return train, heldout


def main():
    out = HERE / "splits"
    out.mkdir(exist_ok=True)
    for name, rows in zip(("train", "heldout"), split_rows()):
        sets = {name: rows,                                   # and each set alone (FAD refs)
                f"{name}-digits": [r for r in rows if r["path"].startswith("../digits/")],
                f"{name}-chorales": [r for r in rows if r["path"].startswith("../chorales/")]}
        for file, chosen in sets.items():
            (out / f"{file}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chosen))
            print(f"{out / file}.jsonl: {len(chosen)} clips")


if __name__ == "__main__":
    main()
