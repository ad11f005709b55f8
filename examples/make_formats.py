"""Make the example files in other formats: Parquet model outputs and LM token log-probs.

- ``digits.parquet``: the rows of ``digits.csv`` as pandas and Hugging Face datasets
  write them: one list column ``logits`` (10 float values per row) and ``label``; the
  values are the CSV's, so ``xent batch`` gives the same figures on both.
- ``zen_tokens.jsonl``: a language model's evaluation, one JSON object per token: the
  log-probability a character bigram model (add-one smoothing, trained on the first ten
  lines of ``import this``, the Zen of Python, which ships with Python) gives to each
  character of the other nine lines, with the line number (the sequence) and the
  character's length in UTF-8 bytes. Small and real: every figure of the token report
  (per token, per sequence, per byte) can be checked by hand.

Run from the repository root: ``python examples/make_formats.py`` (needs pyarrow, which
xent depends on). Deterministic.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import itertools
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent


def digits_parquet() -> None:
    text = (HERE / "digits.csv").read_text().splitlines()
    rows = [line.split(",") for line in text[1:]]
    logits = [[float(v) for v in row[:-1]] for row in rows]
    labels = [int(row[-1]) for row in rows]
    table = pa.table({"logits": pa.array(logits, pa.list_(pa.float64())), "label": labels})
    pq.write_table(table, HERE / "digits.parquet", row_group_size=256)


def zen_tokens() -> None:
    with contextlib.redirect_stdout(io.StringIO()):  # importing it prints the poem
        import this
    zen = codecs.decode(this.s, "rot13").splitlines()[2:]  # skip the title and blank line
    train, test = zen[:10], zen[10:]
    pairs: Counter[tuple[str, str]] = Counter()
    starts: Counter[str] = Counter()
    for line in train:
        text = "\n" + line
        pairs.update(itertools.pairwise(text))
        starts.update(text[:-1])
    vocabulary = sorted(set("".join(zen)) | {"\n"})
    V = len(vocabulary)
    with open(HERE / "zen_tokens.jsonl", "w") as out:
        for number, line in enumerate(test, start=11):
            text = "\n" + line
            for previous, char in itertools.pairwise(text):
                p = (pairs[previous, char] + 1) / (starts[previous] + V)
                record = {
                    "line": number,
                    "token": char,
                    "logprob": float(np.float32(math.log(p))),  # as a model writes float32
                    "bytes": len(char.encode("utf-8")),
                }
                out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    digits_parquet()
    zen_tokens()
