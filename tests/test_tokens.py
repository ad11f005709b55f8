"""``xent batch --logprob-column``: a language model's token log-probabilities.

The oracle is a direct computation written here from the definitions, with exact
rationals (``fractions``) and mpmath: mean NLL per token, token perplexity, the mean of
per-sequence perplexities, bits per byte.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hardening import assert_clean_error, run


def corpus(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sequences = np.repeat(np.arange(12), rng.integers(1, 30, 12))
    n = len(sequences)
    logprobs = -rng.exponential(2.0, n)
    logprobs[3] = 0.0
    logprobs[7] = -1e-300
    byte_counts = rng.integers(1, 9, n)
    return sequences, logprobs, byte_counts


def write_csv(path: Path, sequences, logprobs, byte_counts) -> Path:
    rows = ["seq,token,logprob,bytes"]
    rows += [
        f"s{s},t,{float(lp)!r},{b}"
        for s, lp, b in zip(sequences, logprobs, byte_counts, strict=False)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def report(*args: str) -> dict:
    outcome = run(["batch", *args, "--format", "json"])
    assert outcome.code == 0, outcome.stderr
    return json.loads(outcome.stdout)


def expected(sequences, logprobs, byte_counts) -> dict[str, float]:
    nll = [-Fraction(float(v)) for v in logprobs]
    total = sum(nll, Fraction(0))
    mpmath.mp.prec = 200
    mean = total / len(nll)
    per_seq = {}
    for s, v in zip(sequences.tolist(), nll, strict=False):
        tot, cnt = per_seq.get(s, (Fraction(0), 0))
        per_seq[s] = (tot + v, cnt + 1)
    seq_ppl = sum(
        mpmath.exp(mpmath.mpf(t.numerator) / t.denominator / c) for t, c in per_seq.values()
    )
    return {
        "loss": float(mean),
        "perplexity": float(mpmath.exp(mpmath.mpf(mean.numerator) / mean.denominator)),
        "sequence_perplexity_mean": float(seq_ppl / len(per_seq)),
        "bits_per_byte": float(
            mpmath.mpf(total.numerator)
            / total.denominator
            / (mpmath.log(2) * int(byte_counts.sum()))
        ),
        "sequences": len(per_seq),
    }


def close(a: float, b: float, ulps: int) -> bool:
    return abs(a - b) <= ulps * math.ulp(b)


def test_token_figures_agree_with_a_direct_computation(tmp_path: Path) -> None:
    sequences, logprobs, byte_counts = corpus()
    path = write_csv(tmp_path / "tokens.csv", sequences, logprobs, byte_counts)
    got = report(
        str(path),
        "--logprob-column",
        "logprob",
        "--sequence-column",
        "seq",
        "--bytes-column",
        "bytes",
    )
    want = expected(sequences, logprobs, byte_counts)
    assert got["tokens"] == len(logprobs)
    assert got["sequences"] == want["sequences"]
    assert got["loss"] == want["loss"]  # correctly rounded mean of exact NLLs
    assert close(got["perplexity"], want["perplexity"], 2)
    assert close(got["sequence_perplexity_mean"], want["sequence_perplexity_mean"], 4)
    assert close(got["bits_per_byte"], want["bits_per_byte"], 2)


def test_bits_and_the_same_bits_however_the_rows_are_split(tmp_path: Path) -> None:
    sequences, logprobs, byte_counts = corpus(1)
    whole = write_csv(tmp_path / "whole.csv", sequences, logprobs, byte_counts)
    cut = len(logprobs) // 3  # a sequence spans the two files
    first = write_csv(tmp_path / "a.csv", sequences[:cut], logprobs[:cut], byte_counts[:cut])
    table = pa.table(
        {
            "seq": [f"s{s}" for s in sequences[cut:]],
            "logprob": logprobs[cut:],
            "bytes": byte_counts[cut:],
        }
    )
    pq.write_table(table, tmp_path / "b.parquet", row_group_size=7)
    args = ["--logprob-column", "logprob", "--sequence-column", "seq", "--bytes-column", "bytes"]
    one = report(str(whole), *args)
    two = report(str(first), str(tmp_path / "b.parquet"), *args)
    for key in (
        "tokens",
        "sequences",
        "loss",
        "perplexity",
        "sequence_perplexity_mean",
        "bits_per_byte",
    ):
        assert one[key] == two[key], key
    bits = report(str(whole), *args, "--base", "2")
    assert close(bits["loss"], one["loss"] / math.log(2), 2)
    assert bits["perplexity"] == one["perplexity"]  # perplexity does not depend on the unit


def test_without_a_sequence_column_each_file_is_a_sequence(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"lp": -1.0}\n{"lp": -2.0}\n\n{"lp": -3.0}\n')
    got = report(str(path), "--logprob-column", "lp")
    assert got["sequences"] == 1
    assert got["sequences_from"] == "files"
    assert got["loss"] == 2.0
    assert got["bits_per_byte"] is None
    assert got["worst"][0]["line"] == 1


def test_a_minus_inf_log_probability_is_an_infinite_loss(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("logprob\n-1.0\n-inf\n")
    got = report(str(path), "--logprob-column", "logprob")
    assert got["loss"] == "inf"
    assert got["perplexity"] == "inf"


@pytest.mark.parametrize(
    ("text", "where", "contains"),
    [
        ("logprob\n-1.0\n0.5\n", ":3:logprob", "must be <= 0"),
        ("logprob\n-1.0\n\nnan\n", ":4:logprob", "nan"),
        ("logprob\n-1.0\nabc\n", ":3:logprob", "not a number"),
    ],
)
def test_bad_token_files(tmp_path: Path, text: str, where: str, contains: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    outcome = run(["batch", str(path), "--logprob-column", "logprob"])
    assert_clean_error(outcome, 1, where=f"{path}{where}", contains=(contains,))


def test_jsonl_token_line_without_the_field(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"lp": -1.0}\n{"x": -2.0}\n')
    outcome = run(["batch", str(path), "--logprob-column", "lp"])
    assert_clean_error(outcome, 1, where=f"{path}:2:lp", contains=("no field",))


def test_jsonl_tokens_with_integer_ids_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"lp": 0, "doc": 7, "n": 2}\n{"lp": -1.5, "doc": 7, "n": 3}\n{"lp": -0.5, "doc": 8, "n": 1}\n'
    )
    got = report(
        str(path), "--logprob-column", "lp", "--sequence-column", "doc", "--bytes-column", "n"
    )
    assert got["sequences"] == 2
    assert got["loss"] == 2.0 / 3
    assert close(got["bits_per_byte"], 2.0 / (6 * math.log(2)), 1)
    assert got["worst"][0]["sequence"] == "7"


def test_scores_token_logprobs_is_the_same_report(tmp_path: Path) -> None:
    sequences, logprobs, byte_counts = corpus(3)
    path = write_csv(tmp_path / "tokens.csv", sequences, logprobs, byte_counts)
    by_option = report(str(path), "--scores", "token-logprobs", "--sequence-column", "seq")
    by_column = report(str(path), "--logprob-column", "logprob", "--sequence-column", "seq")
    assert by_option == by_column
    both = report(
        str(path),
        "--scores",
        "token-logprobs",
        "--logprob-column",
        "logprob",
        "--sequence-column",
        "seq",
    )
    assert both == by_column
    outcome = run(["batch", str(path), "--scores", "probs", "--logprob-column", "logprob"])
    assert outcome.code == 2
    assert "--logprob-column reads token log-probabilities" in outcome.stderr
