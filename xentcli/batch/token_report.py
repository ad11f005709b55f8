"""Rendering of a :class:`~xentcli.batch.tokens.TokenSummary`: a table, JSON and CSV."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from rich.text import Text

from xentcli.batch.report import _heading, _table, full, number
from xentcli.text import dumps

if TYPE_CHECKING:
    from rich.console import Console

    from xentcli.batch.tokens import TokenSummary


def render_json(summary: TokenSummary) -> str:
    """The JSON document (full precision), with a final newline."""
    return dumps(summary.to_json()) + "\n"


def render_csv(summary: TokenSummary) -> str:
    """One CSV line per file (tokens), then ``*`` with every figure; full precision."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "file",
            "tokens",
            "sequences",
            "loss",
            "perplexity",
            "sequence_perplexity_mean",
            "bits_per_byte",
            "units",
        ]
    )
    for path, tokens in summary.files:
        writer.writerow([path, tokens, "", "", "", "", "", summary.units])
    writer.writerow(
        [
            "*",
            summary.tokens,
            summary.sequences,
            full(summary.loss),
            full(summary.perplexity),
            full(summary.sequence_perplexity_mean),
            full(summary.bits_per_byte),
            summary.units,
        ]
    )
    return out.getvalue()


def render_table(summary: TokenSummary, console: Console) -> None:
    """Print the figures a person reads: per token, per sequence, per byte; the worst."""
    with console.capture() as captured:
        _render(summary, console)
    lines = captured.get().splitlines()
    console.file.write("".join(line.rstrip() + "\n" for line in lines))


def _render(summary: TokenSummary, console: Console) -> None:
    n_files = len(summary.files)
    seq_from = (
        "each file one sequence"
        if summary.sequences_from == "files"
        else f"by {summary.sequences_from}"
    )
    console.print(
        Text(
            f"xent batch: token log-probabilities, {n_files} file{'s' * (n_files != 1)},"
            f" {summary.tokens} tokens, {summary.sequences} sequences ({seq_from})",
            style="bold",
        )
    )
    table = _table(console)
    table.add_column("")
    table.add_column("", justify="right")
    units = summary.units
    table.add_row(f"mean NLL per token ({units})", number(summary.loss))
    table.add_row("perplexity (tokens): exp(sum NLL / tokens)", number(summary.perplexity))
    table.add_row("mean of per-sequence perplexities", number(summary.sequence_perplexity_mean))
    table.add_row(
        "bits per byte: sum NLL / (ln 2 * bytes)",
        number(summary.bits_per_byte, "- (no --bytes-column)"),
    )
    console.print(table)
    if summary.histogram:
        _heading(console, f"Mean NLL per token of each sequence ({units})")
        most = max(n for _, _, n in summary.histogram) or 1
        for low, high, n in summary.histogram:
            bar = "#" * round(30 * n / most)
            console.print(Text(f"{low:>8.4f} - {high:<8.4f} {bar:<30} {n}"))
    if summary.worst:
        _heading(console, f"Worst {len(summary.worst)} sequences (highest mean NLL per token)")
        worst = _table(console)
        for name, justify in (
            ("#", "left"),
            ("Sequence", "left"),
            ("Tokens", "right"),
            (f"NLL/token ({units})", "right"),
            ("First token", "left"),
        ):
            worst.add_column(name, justify=justify)  # type: ignore[arg-type]
        for i, w in enumerate(summary.worst, 1):
            worst.add_row(str(i), w.sequence, str(w.tokens), number(w.loss), w.place)
        console.print(worst)
