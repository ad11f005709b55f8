"""The evaluation metrics against scikit-learn on a real classifier's outputs, and ECE/MCE
against a direct implementation of their definitions written here."""

from __future__ import annotations

import dataclasses
import functools
import math

import mpref
import numpy as np
import percentiles
import pytest
import scipy.special
from sklearn import metrics as skm

from xentcli.batch.accumulator import BatchOptions, summarize
from xentcli.batch.metrics import MetricOptions, MetricSet, fine_bin, metric_rows
from xentcli.batch.reader import Chunk
from xentcli.errors import XentError


@functools.cache
def digits_outputs() -> tuple[np.ndarray, np.ndarray]:
    """Scores of a linear discriminant analysis fitted on half of scikit-learn's digits,
    on the other half (898 rows, 10 classes; 94 % accurate and over-confident): a real,
    imperfect, miscalibrated classifier, fitted in closed form (fast)."""
    from sklearn.datasets import load_digits
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    x, y = load_digits(return_X_y=True)
    model = LinearDiscriminantAnalysis().fit(x[::2], y[::2])
    return model.decision_function(x[1::2]), y[1::2].astype(np.int64)


def chunks(logits, labels, size, targets=None, path="a.csv"):
    for start in range(0, logits.shape[0], size):
        stop = start + size
        yield Chunk(
            path,
            np.ascontiguousarray(logits[start:stop]),
            None if labels is None else labels[start:stop],
            None if targets is None else targets[start:stop],
            np.arange(start, min(stop, logits.shape[0])) + 2,
        )


def run(logits, labels, size=128, targets=None, **metric_options):
    options = BatchOptions(**metric_options)
    return summarize(chunks(logits, labels, size, targets), logits.shape[1], options)


def direct_calibration(confidence, correct, bins):
    """ECE and MCE from the definitions: bin b holds b/B <= c < (b+1)/B, c = 1 in the last."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece, mce = 0.0, 0.0
    for b in range(bins):
        inside = (confidence >= edges[b]) & (confidence < edges[b + 1])
        if b == bins - 1:
            inside |= confidence == 1.0
        if inside.any():
            gap = abs(correct[inside].mean() - confidence[inside].mean())
            ece += inside.sum() / confidence.size * gap
            mce = max(mce, gap)
    return ece, mce


def direct_equal_mass_ece(confidence, correct, bins):
    """Equal-mass ECE: sorted by confidence, the row of rank t is in bin floor(t B / N)."""
    order = np.argsort(confidence, kind="stable")
    c, a = confidence[order], correct[order].astype(float)
    which = np.arange(c.size) * bins // c.size
    return sum(abs((c[which == b] - a[which == b]).sum()) for b in range(bins)) / c.size


def test_brier_top_k_confusion_and_scores_agree_with_scikit_learn():
    logits, labels = digits_outputs()
    q = scipy.special.softmax(logits, axis=1)
    summary = run(logits, labels, top_k=(1, 2, 3, 5))
    m = summary.metrics
    assert m is not None
    k = logits.shape[1]
    brier = sum(skm.brier_score_loss(labels == c, q[:, c]) for c in range(k))
    assert m.brier.mean == pytest.approx(brier, rel=1e-12)
    for top in (1, 2, 3, 5):
        expected = skm.top_k_accuracy_score(labels, logits, k=top, labels=range(k))
        assert m.top_k.accuracy(top) == expected
    assert m.top_k.accuracy(1) == summary.accuracy
    np.testing.assert_array_equal(
        m.confusion.matrix, skm.confusion_matrix(labels, logits.argmax(1), labels=range(k))
    )
    p, r, f, s = skm.precision_recall_fscore_support(
        labels, logits.argmax(1), labels=range(k), zero_division=0
    )
    got = m.confusion.classes
    assert [c.support for c in got] == s.tolist()
    np.testing.assert_allclose([c.precision for c in got], p, rtol=1e-15)
    np.testing.assert_allclose([c.recall for c in got], r, rtol=1e-15)
    np.testing.assert_allclose([c.f1 for c in got], f, rtol=1e-14)
    for average, mine in (("macro", m.confusion.macro), ("weighted", m.confusion.weighted)):
        p, r, f, _ = skm.precision_recall_fscore_support(
            labels, logits.argmax(1), average=average, zero_division=0
        )
        assert (mine.precision, mine.recall, mine.f1) == pytest.approx((p, r, f), rel=1e-14)


@pytest.mark.parametrize("bins", [1, 10, 15])
def test_ece_and_mce_agree_with_the_definition(bins):
    logits, labels = digits_outputs()
    q = scipy.special.softmax(logits, axis=1)
    confidence, correct = q.max(axis=1), q.argmax(axis=1) == labels
    cal = run(logits, labels, bins=bins).metrics.calibration
    ece, mce = direct_calibration(confidence, correct, bins)
    assert cal.ece == pytest.approx(ece, rel=1e-12, abs=1e-15)
    assert cal.mce == pytest.approx(mce, rel=1e-12, abs=1e-15)
    mass = direct_equal_mass_ece(confidence, correct, bins)
    assert abs(cal.ece_equal_mass - mass) <= cal.ece_equal_mass_bound + 1e-12
    assert cal.ece_equal_mass_bound < 0.03  # the fine grid is fine on real outputs
    assert sum(b.rows for b in cal.bins) == labels.size
    for b, low in zip(cal.bins, np.linspace(0, 1, bins + 1)[:-1], strict=True):
        inside = (confidence >= low) & (confidence < low + 1 / bins)
        if b is cal.bins[-1]:
            inside |= confidence == 1.0
        assert b.rows == inside.sum()
        if b.rows:
            assert b.confidence == pytest.approx(confidence[inside].mean(), rel=1e-12)
            assert b.accuracy == correct[inside].mean()


def test_equal_mass_ece_is_exact_when_no_fine_bin_straddles_an_edge():
    rng = np.random.default_rng(3)
    confidence_bins = np.array([0.6, 0.7, 0.8, 0.95])  # distinct fine bins, 100 rows each
    logits = np.zeros((400, 2))
    c = np.repeat(confidence_bins, 100) + rng.uniform(0, 1e-4, 400)  # same fine bin each
    logits[:, 0] = np.log(c / (1 - c))
    labels = (rng.random(400) > c).astype(np.int64)  # class 0 right with probability c
    cal = run(logits, labels, bins=4).metrics.calibration
    q = scipy.special.softmax(logits, axis=1)
    assert cal.ece_equal_mass_bound == 0.0
    assert cal.equal_mass_rows == (100, 100, 100, 100)
    expected = direct_equal_mass_ece(q.max(1), q.argmax(1) == labels, 4)
    assert cal.ece_equal_mass == pytest.approx(expected, rel=1e-12)


def test_confidence_of_exactly_one_is_in_the_last_bin():
    logits = np.array([[0.0, -800.0], [0.0, -800.0], [0.0, 0.0]])
    cal = run(logits, np.array([0, 1, 0]), bins=15).metrics.calibration
    assert cal.bins[-1].rows == 2
    assert cal.bins[7].rows == 1
    assert len(cal.bins) == 15
    assert cal.bins[-1].confidence == 1.0
    assert cal.bins[-1].accuracy == 0.5


def test_top_k_tie_rule_is_scikit_learns_mirrored():
    """Ties go to the lower class index (as the argmax). scikit-learn's
    top_k_accuracy_score gives them to the higher index, so on the mirrored columns
    (class c becomes K-1-c) it computes exactly our rule."""
    rng = np.random.default_rng(7)
    k = 8
    logits = rng.integers(0, 3, size=(500, k)).astype(float)  # many ties
    labels = rng.integers(0, k, size=500)
    summary = run(logits, labels, top_k=(1, 2, 3, 5, 7))
    mirrored = logits[:, ::-1]
    for top in (1, 2, 3, 5, 7):
        expected = skm.top_k_accuracy_score(k - 1 - labels, mirrored, k=top, labels=range(k))
        assert summary.metrics.top_k.accuracy(top) == expected
    # and the rule differs from scikit-learn's own on unmirrored ties (the test can fail)
    assert summary.metrics.top_k.accuracy(1) != skm.top_k_accuracy_score(
        labels, logits, k=1, labels=range(k)
    )


@pytest.mark.parametrize("k", [1, 2, 10, 32, 33, 200])
def test_rank_and_confidence_by_their_definitions(k):
    """The rank (classes above the true one, ties to the lower index), against a loop
    over the classes written here; the top-label confidence and the Brier term against
    mpmath: on either side of the number of classes where their computation changes
    (32; 2 is the kernel's binary path), with ties and masked classes."""
    rng = np.random.default_rng(k)
    y = np.round(rng.standard_normal((400, k)) * 2)  # many ties
    y[rng.random((400, k)) < 0.2] = -np.inf
    y[:, 0] = np.where(np.isinf(y).all(axis=1), 0.0, y[:, 0])
    labels = rng.integers(0, k, 400)
    rows = metric_rows(y, labels, y.argmax(1), np.arange(400))
    for i in range(400):
        mine = y[i, labels[i]]
        rank = sum(y[i, j] > mine or (y[i, j] == mine and j < labels[i]) for j in range(k))
        assert rows.rank[i] == rank
        q = mpref.probabilities(y[i].tolist())
        assert mpref.ulps(float(rows.confidence[i]), max(q)) <= 2
        brier = sum((qj - (j == labels[i])) ** 2 for j, qj in enumerate(q))
        # sum_k q_k**2 (a plain sum of K squares) - q_i**2 + (1 - q_i)**2: an absolute bound
        assert float(rows.brier[i]) == pytest.approx(float(brier), rel=0, abs=1e-14)


def test_soft_targets_brier_is_the_squared_distance_to_the_target():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(300, 4))
    targets = scipy.special.softmax(rng.normal(size=(300, 4)) * 2, axis=1)
    m = run(logits, None, targets=targets).metrics
    q = scipy.special.softmax(logits, axis=1)
    assert m.brier.mean == pytest.approx(((q - targets) ** 2).sum(1).mean(), rel=1e-12)
    assert m.confusion.matrix.sum() == 300
    support = [c.support for c in m.confusion.classes]
    assert support == np.bincount(targets.argmax(1), minlength=4).tolist()


def test_ignored_rows_and_temperature():
    logits, labels = digits_outputs()
    labels = labels.copy()
    labels[::7] = -100
    options = BatchOptions(ignore_index=-100, temperature=2.5)
    m = summarize(chunks(logits, labels, 100), 10, options).metrics
    keep = labels != -100
    q = scipy.special.softmax(logits[keep] / 2.5, axis=1)
    brier = sum(skm.brier_score_loss(labels[keep] == c, q[:, c]) for c in range(10))
    assert m.brier.rows == keep.sum()
    assert m.brier.mean == pytest.approx(brier, rel=1e-12)
    ece, _ = direct_calibration(q.max(1), q.argmax(1) == labels[keep], 15)
    assert m.calibration.ece == pytest.approx(ece, rel=1e-12)


def test_same_bits_whatever_the_chunking_and_merge_order():
    logits, labels = digits_outputs()
    reference = run(logits, labels, size=899).metrics.to_json()
    for size in (1, 7, 64, 300):
        assert run(logits, labels, size=size).metrics.to_json() == reference
    # states of disjoint parts, merged in another order, give the same bits
    parts = []
    for start in (600, 0, 300):
        part = MetricSet(10)
        rows = metric_rows(
            logits[start : start + 300],
            labels[start : start + 300],
            logits[start : start + 300].argmax(1),
            np.arange(300),
        )
        part.update(rows)
        parts.append(part)
    total = MetricSet(10)
    for part in parts:
        total.merge(part)
    # (these rows carry no loss, so the loss interval is left out of the comparison)
    merged = total.summary().to_json()
    assert merged.pop("ci")["brier"] == reference.pop("ci")["brier"]
    assert merged == reference


def test_fine_bins_increase_with_the_confidence():
    c = np.sort(np.random.default_rng(0).uniform(0.05, 1.0, 10_000))
    c = np.concatenate([c, [1 - 2**-40, 1 - 1e-13, 1.0]])
    keys = fine_bin(c)
    assert (np.diff(keys) >= 0).all()
    assert keys[-1] == keys[-2] != keys[-3]  # within 2**-40 of 1: one bin


@pytest.mark.parametrize("top_k", [(0,), (11,)])
def test_top_k_out_of_range_is_an_error(top_k):
    with pytest.raises(XentError, match="--top-k"):
        MetricSet(10, MetricOptions(top_k=top_k))


def test_defaults():
    assert MetricSet(5).top_k.ks == (1,)
    assert MetricSet(6).top_k.ks == (1, 5)
    assert MetricSet(6).calibration.n_bins == 15
    assert math.isclose(run(*digits_outputs()).metrics.calibration.bins[0].high, 1 / 15)


def test_saved_states_merge_to_the_same_bits_as_one_pass():
    from xentcli.batch import state_file as state
    from xentcli.batch.accumulator import BatchAccumulator

    logits, labels = digits_outputs()
    options = BatchOptions(top_k=(1, 3), bins=12)
    whole = BatchAccumulator(10, options)
    whole.update(logits, labels)
    parts = []
    for part in (slice(500, None), slice(0, 500)):
        acc = BatchAccumulator(10, options)
        acc.update(logits[part], labels[part])
        parts.append(state.loads(state.dumps(acc)))
    parts[0].merge(parts[1])
    assert parts[0].summary().metrics.to_json() == whole.summary().metrics.to_json()


@pytest.mark.parametrize("weighted", [False, True])
def test_sums_made_in_a_reader_thread_are_the_sums_of_one_pass(weighted):
    """MetricSet.prepare makes a chunk's Brier, calibration and loss-moment sums (in a
    reader's thread); update merges them: the saved state is the one update makes from
    the rows themselves. Rows taken from prepared ones (a group's) are folded in as rows:
    the chunk's sums are not theirs."""
    from xentcli.batch.metrics import take_rows

    logits, labels = digits_outputs()
    rng = np.random.default_rng(3)
    weight = rng.random(labels.size) * 2 if weighted else None
    options = MetricOptions(bins=12, weighted=weighted)
    direct, merged, taken, taken_direct = (MetricSet(10, options) for _ in range(4))
    loss = rng.exponential(size=labels.size)
    for part in np.array_split(np.arange(labels.size), 5):
        rows = metric_rows(
            logits[part], labels[part], logits[part].argmax(1), part,
            weight=None if weight is None else weight[part], loss=loss[part],
            loss_weight=np.ones(part.size),
        )  # fmt: skip
        direct.update(rows)
        prepared = merged.prepare(rows, "f")
        assert prepared.sums is not None
        merged.update(prepared)
        half = np.arange(0, part.size, 2)
        # as --group-by cuts a chunk: the arrays cut, the other fields (the sums) kept
        cut = {
            f.name: getattr(prepared, f.name)[half]
            for f in dataclasses.fields(prepared)
            if isinstance(getattr(prepared, f.name), np.ndarray)
        }
        taken.update(dataclasses.replace(prepared, **cut))
        taken_direct.update(take_rows(rows, half))
    assert merged.to_state() == direct.to_state()
    assert taken.to_state() == taken_direct.to_state()
    assert taken.brier.rows == sum(len(p[::2]) for p in np.array_split(labels, 5))


# ------------------------------------------------------------------------ intervals
def _population(rng, k, size):
    logits = rng.normal(scale=2.0, size=(size, k))
    q = scipy.special.softmax(logits, axis=1)
    labels = (rng.random(size)[:, None] > np.cumsum(q, axis=1)).sum(axis=1)
    return logits, np.minimum(labels, k - 1)


def _row_values(logits, labels):
    loss = scipy.special.logsumexp(logits, axis=1) - logits[np.arange(labels.size), labels]
    q = scipy.special.softmax(logits, axis=1)
    onehot = np.eye(logits.shape[1])[labels]
    return loss, ((q - onehot) ** 2).sum(axis=1), q.argmax(axis=1) == labels


def test_normal_and_wilson_intervals_cover_95_percent():
    """1000 seeded synthetic datasets (300 rows, 4 classes, labels drawn from the model's
    own probabilities) against the true means of the population (from 400 000 rows):
    each 95 % interval covers its true value 93-97 % of the time."""
    from xentcli.batch.metrics._intervals import LossMomentsState, brier_interval, wilson
    from xentcli.batch.metrics._rows import MetricRows
    from xentcli.core import ExactSum

    rng = np.random.default_rng(2024)
    truth = [v.mean() for v in _row_values(*_population(rng, 4, 400_000))]
    trials, n = 1000, 300
    logits, labels = _population(rng, 4, trials * n)
    loss, brier, correct = (v.reshape(trials, n) for v in _row_values(logits, labels))
    covered = np.zeros(3)
    for t in range(trials):
        moments = LossMomentsState()
        ones = np.ones(n)
        moments.update(
            MetricRows(
                labels[:1],
                labels[:1],
                ones[:1],
                ones[:1],
                labels[:1],
                labels[:1],
                loss=loss[t],
                loss_weight=ones,
            )
        )
        total, squares = ExactSum(), ExactSum()
        total.add(brier[t])
        squares.add(brier[t] ** 2)
        intervals = (
            moments.interval(0.95),
            brier_interval(total, squares, n, 0.95),
            wilson(int(correct[t].sum()), n, 0.95),
        )
        for i, (low, high) in enumerate(intervals):
            covered[i] += low <= truth[i] <= high
    coverage = covered / trials
    assert ((coverage >= 0.93) & (coverage <= 0.97)).all(), coverage


def test_weighted_loss_interval_is_the_delta_method():
    """With class weights the interval is the ratio estimator's (delta method),
    computed here from its formula with numpy."""
    from xentcli.batch.metrics._intervals import LossMomentsState
    from xentcli.batch.metrics._rows import MetricRows

    rng = np.random.default_rng(5)
    loss, weight = rng.exponential(size=500), rng.choice([0.5, 1.0, 3.0], size=500)
    state = LossMomentsState()
    state.update(MetricRows(*(np.zeros(1, np.int64),) * 6, loss=loss * weight, loss_weight=weight))
    mean = (loss * weight).sum() / weight.sum()
    se = np.sqrt(((loss * weight - mean * weight) ** 2).sum() * 500 / 499) / weight.sum()
    low, high = state.interval(0.9)
    assert (low, high) == pytest.approx((mean - 1.6448536 * se, mean + 1.6448536 * se), rel=1e-7)


def test_ci_in_the_json_and_off_with_zero():
    logits, labels = digits_outputs()
    on = run(logits, labels).metrics.to_json()["ci"]
    assert on["level"] == 0.95
    assert on["loss"][0] < run(logits, labels).loss < on["loss"][1]
    assert run(logits, labels, ci=0.0).metrics.to_json()["ci"] is None


# ------------------------------------------------------------------------ bootstrap
def test_bootstrap_weights_depend_only_on_seed_file_and_row():
    from xentcli.batch.metrics._bootstrap import _TABLE, poisson_weights

    whole = poisson_weights(7, "a.csv", np.arange(1, 41), 200)
    assert whole.shape == (40, 200)
    np.testing.assert_array_equal(
        poisson_weights(7, "a.csv", np.array([9, 3, 30]), 200), whole[[8, 2, 29]]
    )
    assert not np.array_equal(poisson_weights(8, "a.csv", np.arange(1, 41), 200), whole)
    assert not np.array_equal(poisson_weights(7, "b.csv", np.arange(1, 41), 200), whole)
    # the table is Poisson(1): mean and variance 1 within its 2**-16 quantization
    assert abs(_TABLE.mean() - 1) < 1e-3
    assert abs(_TABLE.var() - 1) < 1e-3
    counts = np.bincount(_TABLE) / _TABLE.size
    expected = [math.exp(-1) / math.factorial(j) for j in range(counts.size)]
    np.testing.assert_allclose(counts, expected, atol=2**-16)


def test_bootstrap_is_the_same_bits_whatever_the_chunking():
    logits, labels = digits_outputs()
    reference = run(logits, labels, size=899, bootstrap=50, seed=3).metrics.to_json()
    boot = reference["ci"]["bootstrap"]
    assert set(boot) >= {"loss", "accuracy", "brier", "ece", "mce", "top_5_accuracy"}
    for size in (7, 128):
        assert run(logits, labels, size=size, bootstrap=50, seed=3).metrics.to_json() == reference
    other = run(logits, labels, bootstrap=50, seed=4).metrics.to_json()["ci"]["bootstrap"]
    assert other["loss"] != boot["loss"]


def test_bootstrap_replicates_are_weighted_figures():
    """Each replicate's figures equal the weighted figures computed here from the same
    Poisson weights (the test's own weighted loss, accuracy, Brier and ECE)."""
    from xentcli.batch.metrics._bootstrap import BootstrapState, poisson_weights

    logits, labels = digits_outputs()
    q = scipy.special.softmax(logits, axis=1)
    loss = scipy.special.logsumexp(logits, axis=1) - logits[np.arange(labels.size), labels]
    rows = metric_rows(
        logits,
        labels,
        logits.argmax(1),
        np.arange(labels.size) + 2,
        loss=loss,
        loss_weight=np.ones(labels.size),
    )
    state = BootstrapState(30, 11, (1, 5), 15)
    state.update(rows, "x.csv")
    w = poisson_weights(11, "x.csv", np.arange(labels.size) + 2, 30)
    correct = q.argmax(1) == labels
    conf = q.max(1)
    brier = ((q - np.eye(10)[labels]) ** 2).sum(1)
    bins = np.minimum((conf * 15).astype(int), 14)
    for b in range(30):
        wb = w[:, b]
        t = state.totals[b]
        assert t[0] == wb.sum()
        assert t[1] == wb[correct].sum()
        expected_loss = (wb * loss).sum() / wb.sum()
        got_loss = (t[3] + t[4] * 2**20 + t[5] * 2**40) / 2**40 / wb.sum()
        assert got_loss == pytest.approx(expected_loss, rel=1e-9)
        got_brier = (t[9] + t[10] * 2**20 + t[11] * 2**40) / 2**40 / wb.sum()
        assert got_brier == pytest.approx((wb * brier).sum() / wb.sum(), rel=1e-9)
    summary = state.summary(0.9)
    eces = []
    for b in range(30):
        wb = w[:, b]
        gap = sum(abs((wb * (conf - correct))[bins == i].sum()) for i in range(15))
        eces.append(gap / wb.sum())
    assert summary.intervals["ece"] == pytest.approx(percentiles.interval(eces, 0.9), rel=1e-9)


def _definition_weights(seed, path, lines, replicates):
    """The bootstrap weights as the module docstring defines them, computed here: PCG64
    seeded by the seed and BLAKE2b-64 of the file name, row r's draws the 16-bit words of
    the 64-bit words from r * ceil(B / 4) on, each the Poisson(1) quantile (scipy) at
    (u + 1/2) / 2**16."""
    import hashlib

    import scipy.stats

    words = -(-replicates // 4)
    file_key = int.from_bytes(hashlib.blake2b(path.encode(), digest_size=8).digest(), "little")
    generator = np.random.PCG64(np.random.SeedSequence([seed, file_key]))
    start = generator.state
    u = np.empty((len(lines), replicates), dtype=np.uint16)
    for i, line in enumerate(lines):
        generator.state = start
        generator.advance(int(line) * words)
        u[i] = generator.random_raw(words).astype("<u8").view("<u2")[:replicates]
    values, inverse = np.unique(u, return_inverse=True)  # ppf once per distinct draw
    return scipy.stats.poisson.ppf((values + 0.5) / 2**16, 1.0)[inverse].reshape(u.shape)


@pytest.mark.parametrize("replicates", [37, 700])
def test_bootstrap_sums_are_the_definitions_integer_sums(replicates):
    """The state's integers (the saved state's bits) are, per replicate, the sums of the
    weights (computed here from the definition) times each row's value in units of
    2**-40, held as canonical 20-bit pieces (the first two below 2**20), per equal-width
    bin and in total: whatever the rows' order, gaps in their numbers, class weights,
    infinite or too big losses, confidences of 1, and bins of more rows than one matrix
    product takes. 700 replicates: the rows are drawn 292 at a time, and three such
    blocks are summed in floats between two additions into the integers (1000 rows)."""
    from xentcli.batch.metrics._bootstrap import BootstrapState
    from xentcli.batch.metrics._rows import MetricRows

    rng = np.random.default_rng(21)
    n, bins, ks = (2600 if replicates < 100 else 1000), 4, (1, 2, 3)
    confidence = rng.uniform(0.26, 1.0, n)
    confidence[:300] = 0.9  # one bin of 300 rows: several products
    confidence[5:7] = 1.0, 1 - 2**-45  # the latter rounds to 1 at 2**-40 too
    loss = rng.exponential(2.0, n)
    loss[7], loss[11] = np.inf, 3e6  # too big: counted apart
    weight = rng.choice([0.5, 1.0, 3.0], n)
    rows = MetricRows(
        label=np.zeros(n, np.int64),
        predicted=np.zeros(n, np.int64),
        confidence=confidence,
        brier=rng.uniform(0, 2, n),
        rank=rng.integers(0, 4, n),
        lines=rng.permutation(np.arange(2, 3 * n, 3))[:n],  # unsorted, with gaps
        loss=loss * weight,
        loss_weight=weight,
    )
    state = BootstrapState(replicates, 9, ks, bins)
    state.update(rows, "w.csv")
    w = _definition_weights(9, "w.csv", rows.lines, replicates).astype(np.int64)

    def pieces(x):
        fixed = [round(math.ldexp(float(v), 40)) for v in x]
        return np.array([[f % 2**20, f // 2**20 % 2**20, f // 2**40] for f in fixed])

    big = ~np.isfinite(rows.loss) | (rows.loss >= 2**20)
    columns = np.column_stack(
        [
            np.ones(n, np.int64),
            rows.rank == 0,
            big,
            pieces(np.where(big, 0, rows.loss)),
            pieces(np.where(big, 0, weight)),
            pieces(rows.brier),
            rows.rank < 2,
            rows.rank < 3,
        ]
    ).astype(np.int64)

    def canonical(sums):
        """(.., 3) sums of 20-bit pieces as the canonical pieces of the integers they make."""
        out = np.empty_like(sums)
        for at in np.ndindex(sums.shape[:-1]):
            joined = sum(int(p) << (20 * j) for j, p in enumerate(sums[at]))
            out[at] = joined % 2**20, joined // 2**20 % 2**20, joined // 2**40
        return out

    expected = w.T @ columns
    for at in (3, 6, 9):  # loss, weight, Brier
        expected[:, at : at + 3] = canonical(expected[:, at : at + 3])
    np.testing.assert_array_equal(state.totals, expected)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    per_bin = np.column_stack([np.ones(n), rows.rank == 0, pieces(confidence)]).astype(np.int64)
    for b in range(bins):
        expected = w[which == b].T @ per_bin[which == b]
        expected[:, 2:] = canonical(expected[:, 2:])
        np.testing.assert_array_equal(state.binned[b], expected)


def test_bootstrap_sums_stay_exact_past_2_to_the_53():
    """20,000 rows whose confidence, loss and Brier term each have all 40 low bits set
    (2**40 - 1 units of 2**-40): their weighted sums pass 2**53 units, past exact float
    sums, and must still be the definition's integers (the float sums are added into
    integers every 1024 rows)."""
    from xentcli.batch.metrics._bootstrap import BootstrapState
    from xentcli.batch.metrics._rows import MetricRows

    n = 20_000
    value = 1 - 2.0**-40  # 2**40 - 1 units
    rows = MetricRows(
        label=np.zeros(n, np.int64),
        predicted=np.zeros(n, np.int64),
        confidence=np.full(n, value),
        brier=np.full(n, value),
        rank=np.zeros(n, np.int64),
        lines=np.arange(2, n + 2),
        loss=np.full(n, 1 + value),
        loss_weight=np.ones(n),
    )
    state = BootstrapState(3, 4, (1,), 1)
    state.update(rows, "big.csv")
    w = _definition_weights(4, "big.csv", rows.lines, 3).astype(np.int64)
    units = (2**40 - 1) * w.sum(axis=0)  # per replicate, exactly (below 2**63)
    assert units.max() > 2**53

    def joined(pieces):
        return [int(a) + (int(b) << 20) + (int(c) << 40) for a, b, c in pieces]

    assert joined(state.totals[:, 9:12]) == units.tolist()  # Brier
    assert joined(state.totals[:, 3:6]) == (units + (w.sum(axis=0) << 40)).tolist()  # loss
    assert joined(state.binned[0, :, 2:5]) == units.tolist()  # confidence


def test_bootstrap_sums_made_ahead_are_used_only_for_their_rows():
    """Sums made ahead (MetricSet.prepare, in the readers' threads) give the state made
    in place; rows taken from those rows, or folded in under another file's name, are
    summed anew."""
    from xentcli.batch.metrics._rows import take_rows

    logits, labels = digits_outputs()
    rows = metric_rows(
        logits, labels, logits.argmax(1), np.arange(labels.size) + 2,
        loss=np.ones(labels.size), loss_weight=np.ones(labels.size),
    )  # fmt: skip
    options = MetricOptions(bootstrap=20, seed=2)
    plain, ahead = MetricSet(10, options), MetricSet(10, options)
    plain.update(rows, "a.csv")
    prepared = ahead.prepare(rows, "a.csv")
    assert prepared.bootstrap is not None
    ahead.update(prepared, "a.csv")
    assert ahead.to_state() == plain.to_state()
    assert take_rows(prepared, slice(0, 5)).bootstrap is None
    other, again = MetricSet(10, options), MetricSet(10, options)
    other.update(rows, "b.csv")
    again.update(prepared, "b.csv")
    assert again.to_state() == other.to_state() != plain.to_state()


def test_bootstrap_table_weights_are_the_table():
    from xentcli.batch.metrics._bootstrap import _TABLE, _table_weights

    every = np.arange(1 << 16, dtype=np.uint16).reshape(256, 256)
    np.testing.assert_array_equal(_table_weights(every).reshape(-1), _TABLE)


def test_bootstrap_intervals_cover_95_percent():
    """300 seeded synthetic datasets (300 rows, 4 classes, labels drawn from the model's
    probabilities): the 95 % percentile bootstrap intervals (200 replicates) of the mean
    loss and of the accuracy cover the population's values 93-97 % of the time.

    Over 3000 such datasets they covered 95.2 % (loss) and 95.0 % (accuracy); with
    numpy's default percentile (position ``(B - 1) p``, not ``(B + 1) p``) 93.2 % and
    93.4 %: the 5.975th of 200 ordered replicates is below the truth 5.975 / 201 = 3 %
    of the time, not 2.5 %."""
    from xentcli.batch.metrics._bootstrap import BootstrapState

    rng = np.random.default_rng(99)
    truth_loss, _, truth_correct = (v.mean() for v in _row_values(*_population(rng, 4, 400_000)))
    trials, n = 300, 300
    logits, labels = _population(rng, 4, trials * n)
    loss, _, _ = _row_values(logits, labels)
    covered = np.zeros(2)
    for t in range(trials):
        part = slice(t * n, (t + 1) * n)
        y = logits[part]
        rows = metric_rows(
            y, labels[part], y.argmax(1), np.arange(n) + 2, loss=loss[part], loss_weight=np.ones(n)
        )
        state = BootstrapState(200, t, (1,), 1)
        state.update(rows, "synthetic.csv")
        intervals = state.summary(0.95).intervals
        for i, (name, truth) in enumerate((("loss", truth_loss), ("accuracy", truth_correct))):
            low, high = intervals[name]
            covered[i] += low <= truth <= high
    coverage = covered / trials
    assert ((coverage >= 0.93) & (coverage <= 0.97)).all(), coverage


@pytest.mark.parametrize("kind", ["probs", "logprobs"])
def test_probability_inputs_give_the_figures_of_their_logits(kind):
    from xentcli.batch.accumulator import BatchAccumulator

    logits, labels = digits_outputs()
    scores = scipy.special.log_softmax(logits, axis=1)
    if kind == "probs":
        scores = np.exp(scores)
    from_logits = BatchAccumulator(10)
    from_logits.update(logits, labels)
    from_scores = BatchAccumulator(10, BatchOptions(scores=kind))
    from_scores.update(scores, labels)
    a, b = from_logits.summary().metrics, from_scores.summary().metrics
    assert b.brier.mean == pytest.approx(a.brier.mean, rel=1e-9)
    assert b.calibration.ece == pytest.approx(a.calibration.ece, rel=1e-9)
    assert b.top_k.hits == a.top_k.hits


@pytest.mark.parametrize("k", [3, 8, 12, 100])
def test_a_rows_figures_do_not_depend_on_its_chunk_or_the_memory_order(k):
    # The reader hands column-major blocks; a chunk cut down to its counted rows is a
    # row-major copy. Each row's confidence and Brier term must be the same bits in
    # either, and alone in a chunk of one row (the issue 13 contract with --ignore-index).
    rng = np.random.default_rng(k)
    logits = np.asfortranarray(rng.normal(scale=3.0, size=(200, k)))
    labels = rng.integers(0, k, size=200)
    targets = scipy.special.softmax(rng.normal(size=(200, k)), axis=1)
    for soft in (None, targets):
        args = (labels, logits.argmax(1), np.arange(200))
        column_major = metric_rows(logits, *args, targets=soft, temperature=0.7)
        counted = np.ones(200, dtype=bool)
        counted[0] = False
        cut = metric_rows(logits, *args, targets=soft, temperature=0.7, counted=counted)
        for name in ("confidence", "brier"):
            assert np.array_equal(getattr(column_major, name)[1:], getattr(cut, name))
        for i in (1, 57, 199):
            one = [a[i : i + 1] for a in args]
            alone = metric_rows(
                logits[i : i + 1], *one, targets=None if soft is None else soft[i : i + 1],
                temperature=0.7,
            )  # fmt: skip
            assert alone.brier[0] == column_major.brier[i]
            assert alone.confidence[0] == column_major.confidence[i]
