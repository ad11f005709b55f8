"""Tests of the batch accumulator on synthetic chunks (no reader): exactness, chunking, sketches."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from hardening import run

from xentcli.batch.accumulator import (
    BatchAccumulator,
    BatchOptions,
    QuantileSketch,
    summarize,
)
from xentcli.batch.reader import Chunk
from xentcli.core._kernel import cross_entropy
from xentcli.errors import CountError, DataError, InvalidInputError


def make_data(n: int = 500, k: int = 7, seed: int = 0, masked: bool = True):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=4.0, size=(n, k))
    labels = rng.integers(0, k, size=n)
    if masked:
        # masked classes, a few of them the true class (infinite loss is reported, not an error)
        mask = rng.random((n, k)) < 0.05
        mask[:, 0] = False
        logits[mask] = -np.inf
    return logits, labels


def chunks_of(logits, labels=None, targets=None, size=64, path="a.csv", first_line=2):
    n = logits.shape[0]
    for start in range(0, n, size):
        stop = min(start + size, n)
        yield Chunk(
            path,
            np.ascontiguousarray(logits[start:stop]),
            None if labels is None else labels[start:stop],
            None if targets is None else targets[start:stop],
            np.arange(start, stop, dtype=np.int64) + first_line,
        )


OPTION_SETS = [
    {},
    {"weights": [0.5, 1.0, 2.0, 0.1, 3.0, 0.0, 1.7]},
    {"ignore_index": 3},
    {"label_smoothing": 0.1, "weights": [0.5, 1.0, 2.0, 0.1, 3.0, 0.3, 1.7]},
    {"temperature": 0.7, "ignore_index": 2, "label_smoothing": 0.05},
]


@pytest.mark.parametrize("size", [1, 3, 64, 1000])
@pytest.mark.parametrize("options", OPTION_SETS)
def test_mean_is_the_kernels_mean_to_the_last_bit(size, options):
    logits, labels = make_data(n=150, masked=False)
    expected = cross_entropy(logits, labels, **options)
    summary = summarize(chunks_of(logits, labels, size=size), 7, BatchOptions(**options))
    assert summary.loss == expected
    assert summary.loss_mean == expected
    total = cross_entropy(logits, labels, reduction="sum", **options)
    assert summary.loss_sum == total
    sum_summary = summarize(
        chunks_of(logits, labels, size=size), 7, BatchOptions(reduction="sum", **options)
    )
    assert sum_summary.loss == total


@pytest.mark.parametrize("options", OPTION_SETS)
def test_prepared_chunks_give_the_same_summary(options):
    """Chunks carrying the accumulator's own ``losses`` (computed ahead, in the reader's
    threads) fold in exactly as chunks without them; a foreign ``prepared`` is ignored."""
    import dataclasses

    logits, labels = make_data(n=300)
    plain = summarize(chunks_of(logits, labels, size=40), 7, BatchOptions(**options))
    acc = BatchAccumulator(7, BatchOptions(**options))
    for chunk in chunks_of(logits, labels, size=40):
        acc.add(dataclasses.replace(chunk, prepared=acc.losses(chunk)))
    assert acc.summary().to_json() == plain.to_json()
    other = BatchAccumulator(7, BatchOptions(**options))
    for chunk in chunks_of(logits, labels, size=40):
        other.add(dataclasses.replace(chunk, prepared="not row losses"))
    assert other.summary().to_json() == plain.to_json()


def test_losses_of_a_chunk_that_does_not_fit():
    acc = BatchAccumulator(3)
    chunk = next(chunks_of(np.zeros((2, 4)), np.array([0, 1])))
    assert acc.losses(chunk) is None  # add() reports it, with the file's name
    with pytest.raises(DataError, match="4 logit columns, but the first file has 3"):
        acc.add(chunk)


@pytest.mark.parametrize("base", ["2", "10"])
def test_base_converts_at_the_end(base):
    logits, labels = make_data(n=100, masked=False)
    summary = summarize(chunks_of(logits, labels, size=5), 7, BatchOptions(base=base))
    assert summary.loss == cross_entropy(logits, labels, base=base)
    assert summary.units == {"2": "bits", "10": "bans"}[base]
    nats = summarize(chunks_of(logits, labels, size=5), 7)
    assert summary.perplexity == nats.perplexity == math.exp(nats.loss)


@pytest.mark.parametrize("size", [1, 10, 300])
def test_soft_targets_mean_divides_by_n(size):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(300, 4))
    targets = rng.dirichlet(np.ones(4), size=300)
    weights = [1.0, 2.0, 0.5, 3.0]
    expected = cross_entropy(logits, targets=targets, weights=weights)
    summary = summarize(
        chunks_of(logits, targets=targets, size=size), 4, BatchOptions(weights=weights)
    )
    assert summary.loss == expected
    assert summary.weight_sum == 300.0
    assert summary.soft_targets
    predicted = logits.argmax(axis=1)
    assert summary.accuracy == np.mean(predicted == targets.argmax(axis=1))


def test_infinite_loss_is_reported():
    logits = np.array([[0.0, -np.inf], [1.0, 2.0]])
    summary = summarize(chunks_of(logits, np.array([1, 0])), 2)
    assert summary.loss == math.inf
    assert summary.quantiles["max"] == math.inf
    assert summary.worst[0].loss == math.inf
    assert summary.worst[0].probability == 0.0
    assert summary.histogram[-1].rows == 1
    assert summary.histogram[-1].low == math.inf


def test_counts_accuracy_and_per_file():
    logits, labels = make_data(n=200, masked=False)
    labels[::10] = -100
    acc = BatchAccumulator(7, BatchOptions(ignore_index=-100))
    for chunk in chunks_of(logits[:120], labels[:120], size=7, path="one.csv"):
        acc.add(chunk)
    for chunk in chunks_of(logits[120:], labels[120:], size=50, path="two.csv"):
        acc.add(chunk)
    errors = [DataError("two.csv", line, 1, "not a number", "x") for line in (5, 9, 12)]
    acc.add_skipped("two.csv", 3, errors)
    summary = acc.summary()
    assert (summary.rows, summary.rows_counted, summary.rows_ignored, summary.rows_skipped) == (
        203,
        180,
        20,
        3,
    )
    one, two = summary.files
    assert (one.path, one.rows, one.rows_counted, one.rows_ignored) == ("one.csv", 120, 108, 12)
    assert (two.path, two.rows, two.rows_skipped, two.skipped_lines) == (
        "two.csv",
        83,
        3,
        (5, 9, 12),
    )
    assert one.loss == cross_entropy(logits[:120], labels[:120], ignore_index=-100)
    assert two.loss == cross_entropy(logits[120:], labels[120:], ignore_index=-100)
    counted = labels != -100
    correct = int((logits.argmax(axis=1) == labels)[counted].sum())
    assert summary.correct == correct
    assert summary.accuracy == correct / 180
    assert [str(e) for e in summary.skipped] == [str(e) for e in errors]


def test_per_class_means_are_exact():
    logits, labels = make_data(masked=False)
    weights = [0.5, 1.0, 2.0, 0.1, 3.0, 0.0, 1.7]
    summary = summarize(chunks_of(logits, labels, size=9), 7, BatchOptions(weights=weights))
    shares = 0.0
    for c in summary.per_class:
        rows = labels == c.index
        assert c.rows == int(rows.sum())
        assert c.name == str(c.index)
        if weights[c.index] == 0:
            assert c.loss is None
        else:
            assert c.loss == cross_entropy(logits[rows], labels[rows], weights=weights)
        assert c.accuracy == np.mean(logits[rows].argmax(axis=1) == c.index)
        shares += c.share
    assert shares == pytest.approx(1.0, rel=1e-12)


def test_class_names_label_the_rows():
    logits = np.array([[3.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    options = BatchOptions(class_names=["cat", "dog", "bird"], worst=1)
    summary = summarize(chunks_of(logits, np.array([0, 1])), 3, options)
    assert [c.name for c in summary.per_class] == ["cat", "dog", "bird"]
    (worst,) = summary.worst
    assert (worst.line, worst.label, worst.predicted) == (3, "dog", "bird")


@pytest.mark.parametrize("size", [1, 4, 50, 1000])
def test_worst_rows_are_the_top_n_ties_by_input_order(size):
    rng = np.random.default_rng(7)
    n = 400
    logits = np.zeros((n, 3))
    labels = np.zeros(n, dtype=np.int64)
    # a few distinct losses, many ties
    logits[:, 1] = rng.choice([0.0, 1.0, 2.0, 3.0], size=n)
    options = BatchOptions(worst=12)
    summary = summarize(chunks_of(logits, labels, size=size), 3, options)
    losses = cross_entropy(logits, labels, reduction="none")
    order = sorted(range(n), key=lambda i: (-losses[i], i))[:12]
    assert [w.line for w in summary.worst] == [i + 2 for i in order]
    assert [w.loss for w in summary.worst] == [losses[i] for i in order]
    q = np.exp(-losses)
    for w in summary.worst:
        assert w.probability == pytest.approx(q[w.line - 2], rel=1e-15)
        assert (w.label, w.predicted, w.file) == (0, int(logits[w.line - 2].argmax()), "a.csv")


def test_worst_across_files_prefers_the_earlier_file_on_ties():
    logits = np.array([[0.0, 1.0]])
    acc = BatchAccumulator(2, BatchOptions(worst=1))
    acc.add(next(chunks_of(logits, np.array([0]), path="b.csv", first_line=9)))
    acc.add(next(chunks_of(logits, np.array([0]), path="a.csv", first_line=2)))
    assert [(w.file, w.line) for w in acc.summary().worst] == [("b.csv", 9)]


def test_worst_zero_keeps_none():
    logits, labels = make_data(n=20)
    assert summarize(chunks_of(logits, labels), 7, BatchOptions(worst=0)).worst == ()


def test_per_row_results_match_the_kernel():
    logits, labels = make_data(n=50, masked=False)
    labels[3] = -1
    acc = BatchAccumulator(7, BatchOptions(ignore_index=-1, base="2", label_smoothing=0.2))
    results = [acc.add(chunk, per_row=True) for chunk in chunks_of(logits, labels, size=8)]
    loss = np.concatenate([r.loss for r in results])
    expected = cross_entropy(
        logits, labels, ignore_index=-1, base="2", label_smoothing=0.2, reduction="none"
    )
    assert np.isnan(loss[3])
    keep = np.arange(50) != 3
    assert np.array_equal(loss[keep], expected[keep])
    lines = np.concatenate([r.lines for r in results])
    assert lines.tolist() == list(range(2, 52))


def test_quantile_sketch_bounds(monkeypatch):
    monkeypatch.setattr(QuantileSketch, "EXACT_CAPACITY", 0)  # the buckets, not the values
    rng = np.random.default_rng(11)
    values = np.concatenate(
        [
            rng.lognormal(mean=-3.0, sigma=4.0, size=20000),
            np.zeros(300),
            np.full(7, np.inf),
            [5e-324, 1e300],
        ]
    )
    sketch = QuantileSketch()
    for part in np.array_split(rng.permutation(values), 13):
        piece = QuantileSketch()
        piece.add(part)
        sketch.merge(piece)
    assert sketch.count == values.size
    assert sketch.quantile(0.0) == 0.0
    assert sketch.quantile(1.0) == math.inf
    for q in (0.01, 0.02, 0.1, 0.5, 0.9, 0.99, 0.999):
        exact = float(
            np.quantile(values[np.isfinite(values)].tolist() + [np.inf] * 7, q, method="lower")
        )
        got = sketch.quantile(q)
        if exact == 0.0:
            assert got == 0.0
        else:
            assert abs(got - exact) <= QuantileSketch.RELATIVE_ERROR * exact
    bins = sketch.histogram()
    assert sum(b.rows for b in bins) == values.size
    assert bins[0].low == bins[0].high == 0.0
    assert bins[0].rows == 300
    assert bins[1].low == 5e-324
    assert bins[-2].high == 1e300
    assert bins[-1].rows == 7


def test_quantiles_of_a_summary_are_exact_at_the_ends(monkeypatch):
    monkeypatch.setattr(QuantileSketch, "EXACT_CAPACITY", 0)  # the buckets, not the values
    logits, labels = make_data(n=1000, masked=False)
    summary = summarize(chunks_of(logits, labels, size=33), 7)
    losses = cross_entropy(logits, labels, reduction="none")
    assert summary.quantiles["min"] == losses.min()
    assert summary.quantiles["max"] == losses.max()
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        exact = np.quantile(losses, q, method="lower")
        assert abs(summary.quantiles[name] - exact) <= 0.01 * exact


def test_single_value_sketch_and_empty_sketch():
    sketch = QuantileSketch()
    assert sketch.quantile(0.5) is None
    assert sketch.histogram() == []
    sketch.add(np.array([0.25, 0.25]))
    assert sketch.quantile(0.5) == 0.25
    (only,) = sketch.histogram()
    assert (only.low, only.high, only.rows) == (0.25, 0.25, 2)
    with pytest.raises(ValueError, match=">= 0"):
        sketch.add(np.array([-1.0]))


def test_no_row_counts_gives_an_undefined_mean():
    logits = np.array([[1.0, 2.0], [0.0, 0.0]])
    summary = summarize(
        chunks_of(logits, np.array([-100, -100])), 2, BatchOptions(ignore_index=-100)
    )
    assert summary.loss is None
    assert summary.perplexity is None
    assert summary.accuracy is None
    assert summary.rows_ignored == 2
    assert summary.quantiles["p50"] is None
    assert summary.files[0].loss is None
    summed = summarize(
        chunks_of(logits, np.array([-100, -100])),
        2,
        BatchOptions(ignore_index=-100, reduction="sum"),
    )
    assert summed.loss == 0.0


def test_mismatches_are_errors():
    # A library names its parameters (the command line names its options: test_cli_params).
    with pytest.raises(CountError, match=r"^weights: 2 values for 3 classes$") as caught:
        BatchAccumulator(3, BatchOptions(weights=[1.0, 2.0]))
    assert caught.value.about("--weights") == "--weights: 2 values for 3 classes"
    # as it travels from a Dask worker
    assert str(pickle.loads(pickle.dumps(caught.value))) == "weights: 2 values for 3 classes"
    with pytest.raises(CountError, match=r"^class_names: 1 name for 3 classes$"):
        BatchAccumulator(3, BatchOptions(class_names=["a"]))
    acc = BatchAccumulator(3)
    with pytest.raises(DataError, match=r"b\.csv: 2 logit columns, but the first file has 3"):
        acc.add(next(chunks_of(np.zeros((1, 2)), np.array([0]), path="b.csv")))


def test_to_json_has_the_design_keys():
    logits, labels = make_data(n=30, masked=False)
    data = summarize(chunks_of(logits, labels), 7).to_json()
    for key in (
        "files",
        "rows",
        "rows_counted",
        "rows_ignored",
        "rows_skipped",
        "reduction",
        "loss",
        "loss_sum",
        "weight_sum",
        "perplexity",
        "accuracy",
        "units",
        "loss_quantiles",
        "per_class",
        "worst",
    ):
        assert key in data
    assert set(data["loss_quantiles"]) == {"min", "p50", "p90", "p99", "max"}
    assert set(data["files"][0]) >= {"path", "rows", "loss"}
    assert set(data["per_class"][0]) >= {"class", "rows", "loss", "accuracy"}
    assert set(data["worst"][0]) >= {"file", "line", "label", "predicted", "probability", "loss"}
    assert data["worst"][0]["unit"] == "line"  # "row" in Parquet, Arrow and NumPy files


def test_sketch_at_the_top_of_the_float_range(monkeypatch):
    monkeypatch.setattr(QuantileSketch, "EXACT_CAPACITY", 0)  # the buckets, not the values
    sketch = QuantileSketch()
    values = np.array([0.0, 1.0, 1e308, 1.7976931348623157e308, 1.7976931348623157e308])
    sketch.add(values)
    assert sketch.quantile(1.0) == 1.7976931348623157e308
    assert sketch.quantile(0.75) == 1.7976931348623157e308
    assert abs(sketch.quantile(0.5) - 1e308) <= 0.01 * 1e308
    bins = sketch.histogram()
    assert sum(b.rows for b in bins) == 5
    assert bins[-1].high == 1.7976931348623157e308


def test_huge_finite_losses_are_summed_without_error():
    logits = np.array([[0.0, 0.0], [0.0, 1.7976931348623157e308]])
    summary = summarize(chunks_of(logits, np.array([0, 0])), 2)
    assert summary.loss == cross_entropy(logits, [0, 0])
    assert summary.quantiles["max"] == 1.7976931348623157e308


# -------------------------------------------------------------- GroupedExactSum
def _nasty_values(rng, n):
    """Values across the whole float64 range: huge, tiny, subnormal, zeros, negatives."""
    v = rng.normal(size=n) * np.exp2(rng.integers(-1074, 1000, size=n).astype(np.float64))
    v[rng.random(n) < 0.05] = 0.0
    v[rng.random(n) < 0.05] = -0.0
    v[rng.random(n) < 0.05] = 5e-324
    v[rng.random(n) < 0.02] = 1.7976931348623157e308
    return v


def _per_group_exact_sums(values, groups, g):
    from xentcli.core._exactsum import ExactSum

    sums = [ExactSum() for _ in range(g)]
    for c in range(g):
        sums[c].add(values[groups == c])
    return sums


@pytest.mark.parametrize("g", [1, 3, 40, 2000])  # dense (few cells) and sorted (many) passes
@pytest.mark.parametrize("kind", ["losses", "signed"])
def test_grouped_exact_sum_is_exactsum_per_group(g, kind):
    from fractions import Fraction

    from xentcli.core._exactsum import GroupedExactSum

    rng = np.random.default_rng(g)
    n = 3000
    if kind == "losses":  # what batch feeds it: >= 0, mostly moderate
        values = rng.exponential(size=n) * np.exp2(rng.integers(-60, 20, size=n))
        values[rng.random(n) < 0.1] = 0.0
    else:
        values = _nasty_values(rng, n)
    groups = rng.integers(0, g, size=n)
    denominators = rng.random(n) * 3
    expected = _per_group_exact_sums(values, groups, g)
    expected_w = _per_group_exact_sums(denominators, groups, g)
    acc, weights = GroupedExactSum(g), GroupedExactSum(g)
    cuts = np.sort(rng.integers(0, n, size=7))
    for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), n], strict=True):
        acc.add(values[a:b], groups[a:b])
        weights.add(denominators[a:b], groups[a:b])
    for c in range(g):
        assert (
            acc.exact(c)
            == expected[c].exact()
            == sum((Fraction(x) for x in values[groups == c].tolist()), Fraction(0))
        )
        for base in ("e", "2", "10"):
            assert acc.value(c, base) == expected[c].value(base)
        assert acc.counts[c] == expected[c].count
        if expected_w[c].count:
            assert acc.ratio(c, weights, "2") == expected[c].ratio(expected_w[c], "2")
    total = acc.total()
    assert total.exact() == sum((e.exact() for e in expected), Fraction(0))
    assert total.count == n


def test_grouped_exact_sum_order_chunking_and_folding_do_not_matter(monkeypatch):
    from xentcli.core import _exactsum as exactsum
    from xentcli.core._exactsum import GroupedExactSum

    rng = np.random.default_rng(7)
    n, g = 2000, 13
    values, groups = _nasty_values(rng, n), rng.integers(0, g, size=n)
    whole = GroupedExactSum(g)
    whole.add(values, groups)
    monkeypatch.setattr(exactsum, "_EXACT_CHUNK", 5)  # many passes
    monkeypatch.setattr(exactsum, "_GROUP_FOLD", 17)  # many folds into Python ints
    order = rng.permutation(n)
    pieces = GroupedExactSum(g)
    for part in np.array_split(order, 9):
        piece = GroupedExactSum(g)
        piece.add(values[part], groups[part])
        pieces.merge(piece)
    for c in range(g):
        assert pieces.exact(c) == whole.exact(c)
        assert pieces.value(c) == whole.value(c)
    assert pieces.counts.tolist() == whole.counts.tolist()


@pytest.mark.parametrize("fold", [1 << 36, 500])  # never, and while merging
def test_grouped_exact_sum_merges_unfolded_pieces_exactly(monkeypatch, fold):
    """Merging pieces that hold only their int64 store (a chunk's sums made in a
    reader's thread) adds the store in; the sums equal Fractions of the values, with
    add_ones counts and infinities, also when the merge crosses the fold limit."""
    from fractions import Fraction

    from xentcli.core import _exactsum as exactsum
    from xentcli.core._exactsum import GroupedExactSum

    monkeypatch.setattr(exactsum, "_GROUP_FOLD", fold)
    rng = np.random.default_rng(11)
    n, g = 3000, 7
    values, groups = _nasty_values(rng, n), rng.integers(0, g, size=n)
    values[::301] = np.inf
    ones = rng.integers(0, 5, size=(10, g))
    merged = GroupedExactSum(g)
    for part, extra in zip(np.array_split(np.arange(n), 10), ones, strict=True):
        piece = GroupedExactSum(g)
        piece.add(values[part], groups[part])
        piece.add_ones(extra)
        assert piece._folded is None  # an unfolded piece: the merge's fast path
        merged.merge(piece)
    finite = np.isfinite(values)
    expected = _per_group_exact_sums(values, groups, g)  # ExactSum, another class
    for c in range(g):
        expected[c].add_ones(int(ones[:, c].sum()))
        mine = finite & (groups == c)
        exact = sum((Fraction(x) for x in values[mine].tolist()), Fraction(0))
        assert merged.exact(c) == exact + int(ones[:, c].sum())
        assert merged.value(c) == expected[c].value()
        assert merged.counts[c] == expected[c].count


def test_grouped_exact_sum_infinities_nan_ones_and_errors():
    from xentcli.core._exactsum import ExactSum, GroupedExactSum
    from xentcli.errors import UndefinedMeanError

    acc = GroupedExactSum(5)
    acc.add([np.inf, 1.0, np.inf, -np.inf, np.inf, np.nan, 2.0, 0.5], [0, 0, 1, 1, 2, 3, 4, 4])
    assert acc.value(0) == math.inf
    assert math.isnan(acc.value(1))
    assert acc.value(2) == math.inf
    assert math.isnan(acc.value(3))
    assert acc.value(4) == 2.5
    assert acc.exact(0) == 1  # the finite part, as ExactSum
    assert math.isnan(acc.total().value())
    rows = GroupedExactSum(5)
    rows.add_ones(np.array([2, 2, 1, 1, 0]))
    reference = ExactSum()
    reference.add([1.0, 1.0])
    assert rows.exact_sum(0).exact() == reference.exact()
    with pytest.raises(UndefinedMeanError):
        acc.ratio(4, rows)
    assert acc.ratio(0, rows) == math.inf
    ones = ExactSum()
    ones.add_ones(3)
    assert ones.value() == 3.0
    assert ones.count == 3
    with pytest.raises(ValueError, match="group indices"):
        acc.add([1.0], [5])
    with pytest.raises(ValueError, match="group indices"):
        acc.add([1.0], [-1])
    with pytest.raises(ValueError, match="values but"):
        acc.add([1.0, 2.0], [0])
    with pytest.raises(ValueError, match="shape"):
        acc.add_ones([1, 2])
    with pytest.raises(ValueError, match="merge"):
        acc.merge(GroupedExactSum(4))


def test_per_class_sums_without_weights_are_row_counts():
    logits, labels = make_data(n=300, masked=False)
    plain = summarize(chunks_of(logits, labels, size=37), 7, BatchOptions(ignore_index=4))
    assert plain.weight_sum == plain.rows_counted == int((labels != 4).sum())
    for c in plain.per_class:
        rows = labels == c.index
        if c.index == 4:
            assert c.rows == 0
            assert c.loss is None
            continue
        assert c.rows == int(rows.sum())
        assert c.loss == cross_entropy(logits[rows], labels[rows])
        assert c.loss_sum == cross_entropy(logits[rows], labels[rows], reduction="sum")


def test_update_scores_probabilities_and_log_probabilities_as_the_options_say():
    # BatchAccumulator.update once scored every array as logits whatever the options'
    # `scores`: a predict_proba array came out as a loss of logits, silently.
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(4)
    probs = rng.dirichlet(np.ones(5), size=400)
    labels = rng.integers(0, 5, 400)
    want = log_loss(labels, probs, labels=range(5))
    for kind, scores in (("probs", probs), ("logprobs", np.log(probs))):
        acc = BatchAccumulator(5, BatchOptions(scores=kind))
        acc.update(scores[:150], labels[:150])
        acc.update(scores[150:], labels[150:])
        summary = acc.summary()
        assert summary.loss == pytest.approx(want, rel=1e-13), kind
        assert summary.accuracy == np.mean(np.argmax(probs, axis=1) == labels)
    # One column: the probability of class 1 of two (the binary case), as sklearn reads it.
    p1 = probs[:, 0] / (probs[:, 0] + probs[:, 1])
    y = (labels % 2).astype(np.int64)
    acc = BatchAccumulator(2, BatchOptions(scores="probs", binary=True))
    acc.update(p1[:, None], y)
    assert acc.summary().loss == pytest.approx(log_loss(y, p1), rel=1e-13)
    # And they are checked as cross_entropy checks them.
    with pytest.raises(InvalidInputError, match=r"row 0: probabilities sum to 1\.2"):
        BatchAccumulator(3, BatchOptions(scores="probs")).update([[0.5, 0.6, 0.1]], [0])


# Rows scaled by 1 + delta, delta in units of the tolerance: off by less than it
# (accepted as they are) or by more (renormalized, counted: 6 of the 11); the margins
# are far wider than any rounding of a sum.
_DELTAS = (0.0, 0.3, -0.3, 0.75, -0.75, 1.25, -1.25, 4.0, -4.0, 0.02, -0.3)
_ABSOLUTE = (False,) * 9 + (True, True)  # the last two: 2 % and -30 %, whatever the tolerance


def _documented_tolerance(k: int) -> float:
    """docs/input-formats.md: a row's total may be off by min(1e-2, max(1e-5, 5e-5 K))."""
    return min(1e-2, max(1e-5, 5e-5 * k))


def _off_rows(rng: np.random.Generator, n: int, k: int) -> np.ndarray:  # type: ignore[type-arg]
    """n rows of probabilities in [0, 1], each scaled by 1 + one of _DELTAS in turn."""
    tol = _documented_tolerance(k)
    deltas = [d if absolute else d * tol for d, absolute in zip(_DELTAS, _ABSOLUTE, strict=True)]
    p = rng.dirichlet(np.full(k, 2.0), size=n) * 0.97  # every cell stays <= 1 when scaled
    p[:, -1] += 0.03
    return p * (1.0 + np.resize(deltas, n))[:, None]


def _batch_json(path, *args: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    outcome = run(["batch", str(path), "--renormalize", "--format", "json", *args])
    assert outcome.code == 0, outcome.stderr
    return json.loads(outcome.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["probs", "logprobs"])
def test_update_counts_renormalized_rows_as_xent_batch_does(tmp_path, kind):
    # update() once left rows_renormalized at 0 although it divided the rows by their sums.
    rng = np.random.default_rng(11)
    n, k = 44, 4
    p = _off_rows(rng, n, k)
    scores = p if kind == "probs" else np.log(p)
    labels = rng.integers(0, k, n)
    # The count by the documented rule, straight from the values: the sum of the
    # probabilities (or the log of the sum of exp of the log-probabilities) against 1.
    tol = _documented_tolerance(k)
    totals = [math.fsum(row) for row in (p if kind == "probs" else np.exp(scores)).tolist()]
    if kind == "probs":
        want = sum(abs(t - 1.0) > tol for t in totals)
    else:
        want = sum(abs(math.log(t)) > tol for t in totals)
    assert want == n * 6 // 11
    acc = BatchAccumulator(k, BatchOptions(scores=kind, renormalize=True))
    acc.update(scores[:20], labels[:20])
    acc.update(scores[20:], labels[20:])
    summary = acc.summary()
    assert summary.rows_renormalized == want
    assert summary.targets_renormalized == 0
    assert summary.to_json()["rows_renormalized"] == want
    q = p / p.sum(axis=1, keepdims=True)
    assert summary.loss == pytest.approx(-np.log(q[np.arange(n), labels]).mean(), rel=1e-12)
    # The same rows in a CSV file, read by xent batch --renormalize.
    lines = [
        ",".join(map(repr, row)) + f",{y}" for row, y in zip(scores.tolist(), labels, strict=True)
    ]
    path = tmp_path / "p.csv"
    path.write_text("a,b,c,d,label\n" + "\n".join(lines) + "\n")
    data = _batch_json(path, "--scores", kind)
    assert data["rows_renormalized"] == want
    assert data["loss"] == pytest.approx(summary.loss, rel=1e-14)


def test_update_renormalizes_and_counts_soft_targets_as_xent_batch_does(tmp_path):
    # update() refused soft targets off by more than the tolerance under renormalize
    # (xent batch --renormalize divides them by their sums) and never counted them.
    rng = np.random.default_rng(12)
    n, k = 33, 3
    logits = rng.normal(size=(n, k))
    targets = _off_rows(rng, n, k)
    tol = _documented_tolerance(k)
    want = sum(abs(math.fsum(row) - 1.0) > tol for row in targets.tolist())
    assert want == n * 6 // 11
    acc = BatchAccumulator(k, BatchOptions(renormalize=True))
    acc.update(logits, targets=targets)
    summary = acc.summary()
    assert (summary.targets_renormalized, summary.rows_renormalized) == (want, 0)
    t = targets / targets.sum(axis=1, keepdims=True)
    log_q = logits - logits.max(axis=1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(axis=1, keepdims=True))
    assert summary.loss == pytest.approx(-(t * log_q).sum(axis=1).mean(), rel=1e-12)
    lines = [",".join(map(repr, row)) for row in np.hstack([logits, targets]).tolist()]
    path = tmp_path / "t.csv"
    path.write_text("a,b,c,t0,t1,t2\n" + "\n".join(lines) + "\n")
    data = _batch_json(path, "--logit-columns", "a,b,c", "--target-columns", "t0,t1,t2")
    assert data["targets_renormalized"] == want
    assert data["loss"] == pytest.approx(summary.loss, rel=1e-14)
    # A row the readers refuse is still refused, by its row (and cell).
    bad = targets.copy()
    bad[5] = 0.0
    with pytest.raises(InvalidInputError, match=r"^row 5: targets do not sum to 1"):
        BatchAccumulator(k, BatchOptions(renormalize=True)).update(logits, targets=bad)
    bad[5, 1] = -0.5
    with pytest.raises(InvalidInputError, match=r"^row 5, column 1: target must be"):
        BatchAccumulator(k, BatchOptions(renormalize=True)).update(logits, targets=bad)
