"""``xent batch --dtype``: what the file's mean loss would be in float32/float16/bfloat16.

Each row's loss is computed with every step rounded to the format
(:func:`xentcli.core.low_precision_rows`), stable and naive; the rows' values are summed
exactly and the mean rounded once to the format (a framework's float32 accumulation of a
large file may differ in its last bits). Counted: rows whose loss overflows to inf or is
NaN, and rows whose positive loss is lost to 0. Rows with an ignored label are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xentcli import core
from xentcli.batch.reader import Chunk


@dataclass(frozen=True)
class LowPrecisionSummary:
    name: str
    rows: int
    loss: float  #: the mean of the stable rows, rounded to the format
    naive_loss: float
    exact_loss: float  #: xent's exact mean of the same rows (unweighted)
    stable_overflow: int  #: rows whose stable loss is inf or NaN
    naive_overflow: int
    stable_lost: int  #: rows whose positive loss became 0
    naive_lost: int


class LowPrecisionStats:
    def __init__(self, name: str, *, ignore_index: int | None = None, temperature: float = 1.0):
        self.name = name
        self.ignore_index = ignore_index
        self.temperature = temperature
        self.rows = 0
        self.sums = {key: core.ExactSum() for key in ("stable", "naive", "exact")}
        self.counts = dict.fromkeys(
            ("stable_overflow", "naive_overflow", "stable_lost", "naive_lost"), 0
        )

    def add(self, chunk: Chunk) -> None:
        if chunk.labels is None:
            return
        logits, labels = chunk.logits, np.asarray(chunk.labels, dtype=np.int64)
        if self.ignore_index is not None:
            keep = labels != self.ignore_index
            logits, labels = logits[keep], labels[keep]
        if logits.shape[0] == 0:
            return
        if self.temperature != 1.0:
            with np.errstate(over="ignore"):
                logits = logits / self.temperature
        exact = core.row_losses(logits, labels, check=False).loss
        rows = core.low_precision_rows(logits, labels, self.name)
        self.rows += int(labels.size)
        self.sums["exact"].add(exact)
        for key, values in (("stable", rows.stable), ("naive", rows.naive)):
            bad = ~np.isfinite(values)
            self.counts[f"{key}_overflow"] += int(bad.sum())
            self.counts[f"{key}_lost"] += int(((values == 0) & (exact > 0)).sum())
            self.sums[key].add(np.where(np.isnan(values), np.inf, values))

    def summary(self) -> LowPrecisionSummary:
        count = core.ExactSum()
        count.add_ones(self.rows)

        def mean(key: str, rounded: bool) -> float:
            if not self.rows:
                return float("nan")
            value = self.sums[key].ratio(count)
            return float(core.round_to(np.array(value), self.name)[()]) if rounded else value

        return LowPrecisionSummary(
            self.name,
            self.rows,
            mean("stable", True),
            mean("naive", True),
            mean("exact", False),
            **self.counts,
        )


def lines(s: LowPrecisionSummary) -> list[str]:
    return [
        f"In {s.name} (every step rounded to {s.name}; {s.rows} labelled rows, nats)",
        f"  mean loss, stable  {s.loss:.8g}   (exact {s.exact_loss:.10g})",
        f"  mean loss, naive   {s.naive_loss:.8g}",
        f"  rows whose loss overflows to inf or NaN: {s.stable_overflow} stable,"
        f" {s.naive_overflow} naive",
        f"  rows whose loss is lost to 0: {s.stable_lost} stable, {s.naive_lost} naive",
        f"  near the mean, {s.name} moves in steps of {core.spacing(s.exact_loss, s.name):.3g}",
    ]


def to_json(s: LowPrecisionSummary) -> dict[str, object]:
    return {
        "name": s.name,
        "rows": s.rows,
        "loss": s.loss,
        "naive_loss": s.naive_loss,
        "exact_loss": s.exact_loss,
        "rows_overflow": s.stable_overflow,
        "naive_rows_overflow": s.naive_overflow,
        "rows_lost": s.stable_lost,
        "naive_rows_lost": s.naive_lost,
    }


#: ``xent batch --dtype NAME --format csv``: a line per formula
CSV_COLUMNS = ("dtype", "formula", "rows", "loss", "exact", "rows_overflow", "rows_lost")


def to_csv(s: LowPrecisionSummary) -> str:
    """The stable and the naive formula's lines, full precision (the mean as the format
    holds it, printed as float64 prints it; the exact mean of the same rows)."""
    import csv
    import io

    from xentcli.text import nonfinite_text

    def number(x: float) -> str:
        return nonfinite_text(x) or repr(float(x))

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for formula, loss, overflow, lost in (
        ("stable", s.loss, s.stable_overflow, s.stable_lost),
        ("naive", s.naive_loss, s.naive_overflow, s.naive_lost),
    ):
        writer.writerow(
            [s.name, formula, s.rows, number(loss), number(s.exact_loss), overflow, lost]
        )
    return out.getvalue()
