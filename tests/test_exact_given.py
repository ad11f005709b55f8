"""exact=True on given probabilities and log-probabilities: every row loss, label
probability, mean and sum the float64 nearest the exact value (issue 17's contract for
``scores="probs"`` / ``"logprobs"``, and ``xent batch --exact`` on such files).

The oracle is written here from the definitions (mpmath at 4400 bits, enough to hold the
exact sum of any row of float64 and to divide by it): ``q`` is the given probability
(clipped to ``[clip, fl(1 - clip)]``, or divided by the row's exact sum), or ``exp`` of
the given log-probability (clipped to ``[log clip, log(1 - clip)]``); the row loss is
``sum_c a_c (-log q_c)`` with PyTorch's coefficients. Nothing of xent is used to compute
it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import mpmath as mp
import mpref
import numpy as np
import pytest
from test_cli_batch import ok, run

from xentcli import core
from xentcli.core import _exact_block as xb
from xentcli.core import _exact_given as given_module
from xentcli.core import _exact_kernel as exact_kernel
from xentcli.core import _ziv as ziv
from xentcli.core._kernel import cross_entropy, row_losses
from xentcli.errors import InvalidInputError

WIDE = 4400  # bits: any row of float64 sums exactly, and the logs keep ~3000 bits
HALF = 0.5


def ref_nlq(row, kind, *, clip=None, renormalize=False):
    """``-log q_c`` of every class, exactly (None: +inf)."""
    with mp.workprec(WIDE):
        x = [mp.mpf(float(v)) for v in row]
        if kind == "logprobs":
            out = []
            for v in x:
                if clip is not None:
                    c = mp.mpf(clip)
                    v = min(max(v, mp.log(c)), mp.log(1 - c))
                out.append(None if v == -mp.inf else -v)
            return out
        if clip is not None:
            upper = mp.mpf(1.0 - clip)  # the float 1 - clip, as scikit-learn clips
            x = [min(max(v, mp.mpf(clip)), upper) for v in x]
        total = mp.fsum(x) if renormalize else mp.mpf(1)
        return [None if v == 0 else -mp.log(v / total) for v in x]


def ref_loss(row, kind, label=None, *, targets=None, weights=None, eps=0.0, **how):
    """PyTorch's row loss on the given distribution, exactly."""
    k = len(row)
    nlq = ref_nlq(row, kind, **how)
    with mp.workprec(WIDE):
        w = [mp.mpf(1)] * k if weights is None else [mp.mpf(float(v)) for v in weights]
        e = mp.mpf(eps)
        if targets is not None:
            a = [w[c] * ((1 - e) * mp.mpf(float(targets[c])) + e / k) for c in range(k)]
        else:
            a = [w[c] * ((1 - e) * (c == label) + e / k) for c in range(k)]
        total = mp.mpf(0)
        for c in range(k):
            if a[c] == 0:
                continue
            if nlq[c] is None:
                return mp.inf
            total += a[c] * nlq[c]
        return total


def ref_probability(row, kind, label, *, clip=None, renormalize=False):
    nlq = ref_nlq(row, kind, clip=clip, renormalize=renormalize)[label]
    with mp.workprec(WIDE):
        return mp.mpf(0) if nlq is None else mp.exp(-nlq)


def worst(computed, exact) -> float:
    return max((mpref.ulps(float(c), e) for c, e in zip(computed, exact, strict=True)), default=0.0)


def softmax_rows(rng, n: int, k: int, scale: float) -> np.ndarray:
    """Probabilities of every size: from normal logits * scale, zeros included."""
    y = rng.normal(size=(n, k)) * scale
    p = np.exp(y - y.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def log_softmax_rows(rng, n: int, k: int, scale: float, masked: int | None = None) -> np.ndarray:
    y = rng.normal(size=(n, k)) * scale
    if masked is not None:
        y[::7, masked] = -np.inf
    y = y - y.max(axis=1, keepdims=True)
    return y - np.log(np.exp(y).sum(axis=1, keepdims=True))


SPECIAL_PROBS = [
    ([1.0, 0.0], 0),  # loss exactly 0
    ([1.0, 0.0], 1),  # +inf
    ([math.nextafter(1.0, 0.0), 2.0**-53], 0),  # 1 - 2**-53: log1p's argument near 0
    ([math.nextafter(1.0, 0.0), 2.0**-53], 1),  # 53 ln 2
    ([0.5, 0.25, 0.25], 1),  # 2 ln 2: E ln2 alone
    ([5e-324, 1.0 - 5e-324], 0),  # the smallest subnormal: 744.44...
    ([2.2250738585072014e-308, 1.0], 0),
    ([0.7071067811865476, 0.2928932188134524], 0),  # at the fold of the mantissa
    ([0.1, 0.7, 0.2], 1),
]


# ------------------------------------------------------------------ probabilities
@pytest.mark.parametrize("k", [2, 3, 10, 37])
@pytest.mark.parametrize("scale", [0.5, 3.0, 30.0, 300.0])
def test_probabilities_labels(scale: float, k: int) -> None:
    rng = np.random.default_rng(int(k * 100 + scale))
    p = softmax_rows(rng, 30, k, scale)
    labels = rng.integers(0, k, size=30)
    labels[:8] = np.argmax(p[:8], axis=1)  # confident rows: losses near 0
    rows = row_losses(p, labels, scores="probs", exact=True)
    exact = [ref_loss(r, "probs", int(c)) for r, c in zip(p, labels, strict=True)]
    assert worst(rows.loss, exact) <= HALF
    assert np.array_equal(rows.label_probability, p[np.arange(30), labels])  # the given q
    if np.isinf(rows.loss).any():
        return
    with mp.workprec(WIDE):
        exact_mean = mp.fsum(exact) / 30
    assert mpref.ulps(cross_entropy(p, labels, scores="probs", exact=True), exact_mean) <= HALF


@pytest.mark.parametrize(("row", "label"), SPECIAL_PROBS)
def test_special_probabilities(row: list[float], label: int) -> None:
    got = cross_entropy([row], [label], scores="probs", exact=True, reduction="none")[0]
    assert mpref.ulps(float(got), ref_loss(row, "probs", label)) <= HALF
    if row == [1.0, 0.0]:
        assert got == (0.0 if label == 0 else math.inf)


def test_probabilities_weights_smoothing_targets_means() -> None:
    rng = np.random.default_rng(41)
    k = 6
    p = softmax_rows(rng, 40, k, 8.0)
    p[::5, 2] = 0.0
    p /= p.sum(axis=1, keepdims=True)
    labels = rng.integers(0, k, size=40)
    w = rng.uniform(0.2, 5, size=k)  # not powers of two
    for eps in (0.0, 0.1, 0.999):
        rows = row_losses(p, labels, weights=w, label_smoothing=eps, scores="probs", exact=True)
        exact = [
            ref_loss(r, "probs", int(c), weights=w, eps=eps) for r, c in zip(p, labels, strict=True)
        ]
        assert worst(rows.loss, exact) <= HALF, eps
        if not np.isinf(rows.loss).any():
            mean = cross_entropy(p, labels, weights=w, label_smoothing=eps, scores="probs",
                                 exact=True)  # fmt: skip
            with mp.workprec(WIDE):
                exact_mean = mp.fsum(exact) / mp.fsum(mp.mpf(float(w[c])) for c in labels)
            assert mpref.ulps(mean, exact_mean) <= HALF
    t = rng.dirichlet(np.ones(k) * 0.5, size=40)
    t[:, 2] = 0.0  # no target mass on the zero probabilities: finite losses
    t /= t.sum(axis=1, keepdims=True)
    for weights, eps in ((None, 0.0), (w, 0.0), (w, 0.3)):
        rows = row_losses(p, targets=t, weights=weights, label_smoothing=eps, scores="probs",
                          exact=True)  # fmt: skip
        exact = [
            ref_loss(r, "probs", targets=tt, weights=weights, eps=eps)
            for r, tt in zip(p, t, strict=True)
        ]
        assert worst(rows.loss, exact) <= HALF
        total = cross_entropy(p, targets=t, weights=weights, label_smoothing=eps, scores="probs",
                              exact=True, reduction="sum")  # fmt: skip
        with mp.workprec(WIDE):
            assert mpref.ulps(total, mp.fsum(exact)) <= HALF


def test_probabilities_ignore_index_and_bases() -> None:
    rng = np.random.default_rng(42)
    p = softmax_rows(rng, 30, 4, 5.0)
    labels = rng.integers(0, 4, size=30)
    labels[::4] = -100
    keep = labels != -100
    mean = cross_entropy(p, labels, ignore_index=-100, scores="probs", exact=True)
    exact = [ref_loss(r, "probs", int(c)) for r, c in zip(p[keep], labels[keep], strict=True)]
    with mp.workprec(WIDE):
        assert mpref.ulps(mean, mp.fsum(exact) / len(exact)) <= HALF
    for base in ("2", "10"):
        got = cross_entropy(p[keep], labels[keep], scores="probs", exact=True, base=base,
                            reduction="none")  # fmt: skip
        assert worst(got, [mpref.in_base(e, base) for e in exact]) <= HALF
        mean = cross_entropy(p[keep], labels[keep], scores="probs", exact=True, base=base)
        with mp.workprec(WIDE):
            assert mpref.ulps(mean, mpref.in_base(mp.fsum(exact) / len(exact), base)) <= HALF


def test_renormalized_probabilities() -> None:
    """q = p / S with the exact S: rows off by 1 %, rows scaled by 1e-300 (subnormal
    probabilities), a dominant class whose others sum to 1e-119 (log1p of R / p)."""
    rng = np.random.default_rng(43)
    k = 5
    p = softmax_rows(rng, 60, k, 30.0)
    p = np.minimum(p * rng.uniform(0.99, 1.01, size=(60, 1)), 1.0)
    p[::6] *= 1e-300
    p[1] = [1.0, 3e-273, 4.4e-309, 1.0067989210833512e-119, 4e-280]
    p[2] = [0.9922753606149624, 2.8e-164, 3.58515408397303e-126, 8.7e-294, 0.0]
    labels = rng.integers(0, k, size=60)
    labels[:3] = 0
    rows = row_losses(p, labels, scores="probs", renormalize=True, exact=True)
    exact = [ref_loss(r, "probs", int(c), renormalize=True) for r, c in zip(p, labels, strict=True)]
    assert worst(rows.loss, exact) <= HALF
    probabilities = [
        ref_probability(r, "probs", int(c), renormalize=True)
        for r, c in zip(p, labels, strict=True)
    ]
    assert worst(rows.label_probability, probabilities) <= HALF
    t = rng.dirichlet(np.ones(k), size=60)
    t[:, 4] = 0.0
    t /= t.sum(axis=1, keepdims=True)
    rows = row_losses(p, targets=t, label_smoothing=0.0, scores="probs", renormalize=True,
                      exact=True)  # fmt: skip
    exact = [ref_loss(r, "probs", targets=tt, renormalize=True) for r, tt in zip(p, t, strict=True)]
    assert worst(rows.loss, exact) <= HALF


def test_clipped_probabilities() -> None:
    """Clipped to [clip, fl(1 - clip)] (scikit-learn's bounds), then -log correctly rounded."""
    p = np.array([[0.0, 1.0], [1e-20, 1.0 - 1e-20], [0.3, 0.7], [1e-7, 1 - 1e-7]])
    for clip in (1e-7, 2.220446049250313e-16, 0.25):
        for label in (0, 1):
            labels = np.full(4, label)
            got = cross_entropy(p, labels, scores="probs", clip=clip, exact=True, reduction="none")
            exact = [ref_loss(r, "probs", label, clip=clip) for r in p]
            assert worst(got, exact) <= HALF, (clip, label)
            q = row_losses(p, labels, scores="probs", clip=clip, exact=True).label_probability
            assert worst(q, [ref_probability(r, "probs", label, clip=clip) for r in p]) <= HALF


# -------------------------------------------------------------- log-probabilities
@pytest.mark.parametrize("scale", [0.5, 30.0, 800.0])
def test_log_probabilities(scale: float) -> None:
    rng = np.random.default_rng(int(scale) + 44)
    k = 7
    lp = log_softmax_rows(rng, 40, k, scale, masked=3)
    labels = rng.integers(0, k, size=40)
    w = rng.uniform(0.2, 5, size=k)
    for weights, eps in ((None, 0.0), (w, 0.0), (w, 0.1), (None, 0.999)):
        rows = row_losses(lp, labels, weights=weights, label_smoothing=eps, scores="logprobs",
                          exact=True)  # fmt: skip
        exact = [
            ref_loss(r, "logprobs", int(c), weights=weights, eps=eps)
            for r, c in zip(lp, labels, strict=True)
        ]
        assert worst(rows.loss, exact) <= HALF
    probabilities = [
        ref_probability(r, "logprobs", int(c)) for r, c in zip(lp, labels, strict=True)
    ]
    assert worst(rows.label_probability, probabilities) <= HALF
    t = rng.dirichlet(np.ones(k), size=40)
    t[:, 3] = 0.0
    t /= t.sum(axis=1, keepdims=True)
    rows = row_losses(lp, targets=t, weights=w, label_smoothing=0.2, scores="logprobs", exact=True)
    exact = [
        ref_loss(r, "logprobs", targets=tt, weights=w, eps=0.2) for r, tt in zip(lp, t, strict=True)
    ]
    assert worst(rows.loss, exact) <= HALF


def test_log_probabilities_ties_are_decided_exactly() -> None:
    """Losses of log-probabilities are rational: a mean exactly on a midpoint rounds to
    even (800 + 2**-43 / 2 gives 800), and a weighted label loss is one rounding."""
    u = 2.0**-43
    lp = np.array([[-800.0, 0.0], [-(800.0 + u), 0.0]])
    assert cross_entropy(lp, [0, 0], scores="logprobs", exact=True) == 800.0
    got = cross_entropy(lp, [0, 0], weights=[0.1, 1.0], scores="logprobs", exact=True,
                        reduction="none")  # fmt: skip
    assert list(got) == [0.1 * 800.0, 0.1 * (800.0 + u)]


def test_log_probabilities_clipped() -> None:
    clip = 1e-7
    low = math.log(clip)
    lp = np.array(
        [
            [-np.inf, 0.0],
            [-40.0, -4.248354255291589e-18],
            [math.nextafter(low, 0.0), math.log1p(-math.exp(math.nextafter(low, 0.0)))],
            [math.nextafter(low, -1.0), -1.0000000494336803e-07],
            [-1e-9, -20.72326583694641],
        ]
    )
    for label in (0, 1):
        labels = np.full(len(lp), label)
        got = cross_entropy(lp, labels, scores="logprobs", clip=clip, exact=True,
                            reduction="none", sum_tolerance=1e-6)  # fmt: skip
        exact = [ref_loss(r, "logprobs", label, clip=clip) for r in lp]
        assert worst(got, exact) <= HALF, label
        q = row_losses(lp, labels, scores="logprobs", clip=clip, exact=True,
                       sum_tolerance=1e-6).label_probability  # fmt: skip
        assert worst(q, [ref_probability(r, "logprobs", label, clip=clip) for r in lp]) <= HALF


def test_log_probabilities_with_a_temperature_or_renormalized() -> None:
    """softmax(l / T): the exact kernel on the given log-probabilities as logits."""
    rng = np.random.default_rng(45)
    lp = log_softmax_rows(rng, 20, 4, 6.0)
    lp *= 1.0 + 1e-5  # their totals a little off: renormalize has work to do
    labels = rng.integers(0, 4, size=20)
    for temperature, renormalize in ((0.7, False), (1.0, True), (3.0, True)):
        got = cross_entropy(lp, labels, scores="logprobs", temperature=temperature,
                            renormalize=renormalize, exact=True, reduction="none",
                            sum_tolerance=1e-2)  # fmt: skip
        exact = [mpref.loss(list(r), int(c), temperature) for r, c in zip(lp, labels, strict=True)]
        assert worst(got, exact) <= HALF


@pytest.mark.parametrize(
    ("scores", "options", "what"),
    [
        ("probs", {"temperature": 2.0}, "temperature"),
        ("probs", {"clip": 1e-7, "renormalize": True}, "clip with renormalize"),
    ],
)
def test_what_is_refused(scores: str, options: dict, what: str) -> None:
    data = [[0.2, 0.8]] if scores == "probs" else [[math.log(0.2), math.log(0.8)]]
    with pytest.raises(
        InvalidInputError, match=rf"correct rounding \(exact\) is not available for .*{what}"
    ):
        cross_entropy(data, [0], scores=scores, exact=True, **options)
    cross_entropy(data, [0], scores=scores, **options)  # the default path computes it


# ------------------------------------------------------- slow path, portability
def test_slow_path_gives_the_fast_paths_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(46)
    p = softmax_rows(rng, 12, 5, 6.0)
    p[3, 1] = 0.0
    p /= p.sum(axis=1, keepdims=True)
    lp = log_softmax_rows(rng, 12, 5, 6.0)
    labels = rng.integers(0, 5, size=12)
    w = [1.0, 2.0, 0.5, 1.3, 3.0]
    cases = [
        (p, {"scores": "probs", "weights": w}),
        (p * 1.001, {"scores": "probs", "renormalize": True}),
        (p, {"scores": "probs", "label_smoothing": 0.1}),
        (lp, {"scores": "logprobs", "weights": w, "label_smoothing": 0.1}),
        (lp, {"scores": "logprobs", "clip": 1e-3}),
    ]
    fast = [row_losses(x, labels, exact=True, **kw) for x, kw in cases]
    real = ziv.round_checked

    def never_sure(*args, **kwargs):
        value, ok = real(*args, **kwargs)
        return value, np.zeros_like(ok)

    monkeypatch.setattr(xb, "round_checked", never_sure)
    monkeypatch.setattr(given_module, "round_checked", never_sure)
    before = ziv.SLOW_ROWS[0]
    for (x, kw), expected in zip(cases, fast, strict=True):
        slow = row_losses(x, labels, exact=True, **kw)
        assert np.array_equal(slow.loss, expected.loss), kw
        assert np.array_equal(slow.label_probability, expected.label_probability), kw
    assert ziv.SLOW_ROWS[0] - before >= 12 * len(cases)


def test_slow_mean_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(47)
    p = softmax_rows(rng, 10, 4, 3.0)
    labels = rng.integers(0, 4, size=10)
    fast = cross_entropy(p, labels, scores="probs", exact=True)
    monkeypatch.setattr(exact_kernel, "mean", lambda *args, **kwargs: None)
    assert cross_entropy(p, labels, scores="probs", exact=True) == fast
    exact = [ref_loss(r, "probs", int(c)) for r, c in zip(p, labels, strict=True)]
    with mp.workprec(WIDE):
        assert mpref.ulps(fast, mp.fsum(exact) / 10) <= HALF


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_same_bits_whatever_libm_returns(monkeypatch: pytest.MonkeyPatch, direction: float) -> None:
    rng = np.random.default_rng(48)
    p = softmax_rows(rng, 200, 6, 5.0)
    lp = log_softmax_rows(rng, 200, 6, 5.0)
    labels = rng.integers(0, 6, size=200)

    def everything():
        return [
            row_losses(p, labels, scores="probs", exact=True).loss,
            row_losses(p, labels, scores="probs", renormalize=True, exact=True).label_probability,
            row_losses(p, labels, scores="probs", label_smoothing=0.1, exact=True).loss,
            row_losses(lp, labels, scores="logprobs", exact=True).label_probability,
            np.array([cross_entropy(p, labels, scores="probs", exact=True, base="2")]),
        ]

    before = everything()
    for name in ("exp", "log", "log1p", "expm1"):
        fn = getattr(np, name)
        monkeypatch.setattr(
            np, name, lambda x, *a, fn=fn, **kw: np.nextafter(fn(x, *a, **kw), direction * np.inf)
        )
    after = everything()
    for a, b in zip(before, after, strict=True):
        assert a.tobytes() == b.tobytes()


# ----------------------------------------------------------------- xent batch --exact
def write_scores(path: Path, scores: np.ndarray, labels: np.ndarray) -> None:
    k = scores.shape[1]
    lines = [",".join([*(f"p{j}" for j in range(k)), "label"])]
    lines += [
        ",".join([*(repr(float(v)) for v in r), str(int(c))])
        for r, c in zip(scores, labels, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("kind", "options"),
    [("probs", []), ("probs", ["--renormalize"]), ("probs", ["--clip", "1e-3"]), ("logprobs", [])],
)
def test_batch_exact_on_given_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, options: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(49)
    scores = softmax_rows(rng, 30, 4, 6.0) if kind == "probs" else log_softmax_rows(rng, 30, 4, 6.0)
    labels = rng.integers(0, 4, size=30)
    write_scores(tmp_path / "s.csv", scores, labels)
    how = {"renormalize": "--renormalize" in options}
    if "--clip" in options:
        how["clip"] = 1e-3
    exact = [ref_loss(r, kind, int(c), **how) for r, c in zip(scores, labels, strict=True)]
    args = ["batch", "s.csv", "--scores", kind, "--exact", *options, "--chunk-rows", "7"]
    data = json.loads(ok([*args, "--format", "json"]).stdout)
    with mp.workprec(WIDE):
        assert mpref.ulps(data["loss"], mp.fsum(exact) / 30) <= HALF
        for c in range(4):
            mine = [e for e, label in zip(exact, labels, strict=True) if label == c]
            if mine:
                assert mpref.ulps(data["per_class"][c]["loss"], mp.fsum(mine) / len(mine)) <= HALF
    ok([*args, "--base", "2", "--per-row", "rows.csv"])
    with (tmp_path / "rows.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for i, row in enumerate(rows):
        assert mpref.ulps(float(row["loss"]), mpref.in_base(exact[i], "2")) <= HALF
        q = ref_probability(scores[i], kind, int(labels[i]), **how)
        assert mpref.ulps(float(row["probability"]), q) <= HALF
    # the second pass (forced here: every streamed figure undecided) gives the same bits
    monkeypatch.setattr(core, "certain_quotient", lambda *a, **k: None)
    again = run([*args, "--format", "json"])
    assert again.code == 0, again.stderr
    assert "read again" in again.stderr
    assert json.loads(again.stdout)["loss"] == data["loss"]


def test_batch_exact_second_pass_decides_a_tie(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mean of log-probability losses 800 and 800 + 2**-43 is a midpoint exactly: the
    streamed bound cannot decide it, the second pass finds the exact rational mean and
    rounds it to even."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "l.csv").write_text(f"a,b,label\n-800.0,0.0,0\n{-(800.0 + 2.0**-43)!r},0.0,0\n")
    got = ok(["batch", "l.csv", "--scores", "logprobs", "--exact", "--format", "json"])
    assert json.loads(got.stdout)["loss"] == 800.0
    assert "read again" in got.stderr


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ("a,b,label\n0.2,0.8,1\n", ["--temperature", "2"], "probabilities with --temperature"),
        (
            "a,b,label\n0.2,0.8,1\n",
            ["--clip", "1e-3", "--renormalize"],
            "--clip with --renormalize",
        ),
        ("a,label\n0.2,1\n0.9,0\n", ["--scores", "probs"], "one score column"),
    ],
)
def test_batch_exact_refusals(
    tmp_path: Path, content: str, options: list[str], message: str
) -> None:
    path = tmp_path / "p.csv"
    path.write_text(content)
    got = run(["batch", str(path), "--exact", *options])
    assert got.code == 2, got.stderr
    assert message in got.stderr
    assert "p.csv holds probabilities" in got.stderr
    assert "Traceback" not in got.stderr


def test_compute_exact_on_probabilities() -> None:
    got = json.loads(
        ok(
            ["compute", "--probs", "0.1,0.7,0.2", "--label", "2", "--exact", "--format", "json"]
        ).stdout
    )
    assert mpref.ulps(got["loss"], ref_loss([0.1, 0.7, 0.2], "probs", 2)) <= HALF
    refused = run(
        ["compute", "--probs", "0.1,0.7,0.2", "--label", "2", "--exact", "--temperature", "2"]
    )
    assert refused.code == 2
    assert "correct rounding (exact) is not available for probabilities" in refused.stderr


def test_log_dd_within_its_bound() -> None:
    """log_dd (the log of a positive double-double times 2**e) against mpmath: within
    its stated bound over wide and hard arguments (subnormals, 1 +- 2**-53, the fold)."""
    from xentcli.core._ddmath import log_dd

    rng = np.random.default_rng(50)
    hi = np.concatenate(
        [
            rng.uniform(0, 1, 1000),
            10.0 ** rng.uniform(-323, 0, 1000),
            1.0 - 10.0 ** rng.uniform(-16, -1, 500),
            1.0 + 10.0 ** rng.uniform(-16, -1, 500),
            [1.0, 0.5, 2.0, 5e-324, 2.2250738585072014e-308, 0.7071067811865476,
             1.4142135623730951, 1.4142135623730954, 1e5],
        ]
    )  # fmt: skip
    lo = np.where(rng.uniform(size=hi.size) < 0.5, 0.0, hi * rng.uniform(-1, 1, hi.size) * 2.0**-54)
    e = rng.integers(-1100, 1100, size=hi.size) * (rng.uniform(size=hi.size) < 0.3)
    out_hi, out_lo, err = log_dd(hi, lo, e)
    with mp.workprec(WIDE):
        for h, low, ex, a, b, bound in zip(hi, lo, e, out_hi, out_lo, err, strict=True):
            exact = mp.log((mp.mpf(float(h)) + mp.mpf(float(low))) * mp.mpf(2) ** int(ex))
            assert abs(mp.mpf(float(a)) + mp.mpf(float(b)) - exact) <= bound, (h, low, ex)
            if exact != 0:
                assert bound <= abs(exact) * 2.0**-72 + 2.0**-1000
    assert tuple(float(v[0]) for v in log_dd(np.ones(1), np.zeros(1))) == (0.0, 0.0, 0.0)


def test_a_target_on_a_zero_probability_is_inf_without_the_slow_path() -> None:
    """A positive share of the target on a class of probability 0 (or a masked logit):
    +inf exactly, decided by the fast path (it was nan there, and each such row went to
    decimal)."""
    rng = np.random.default_rng(51)
    p = softmax_rows(rng, 200, 6, 300.0)  # many exact zeros
    t = rng.dirichlet(np.ones(6), size=200)
    y = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), -np.inf)
    before = ziv.SLOW_ROWS[0]
    given = row_losses(p, targets=t, scores="probs", exact=True).loss
    logits = row_losses(y, targets=t, exact=True).loss
    assert ziv.SLOW_ROWS[0] - before <= 2
    zero = (p == 0).any(axis=1)
    assert zero.sum() > 50
    assert np.isinf(given[zero]).all()
    assert np.isinf(logits[zero]).all()
    exact = [
        ref_loss(r, "probs", targets=tt) for r, tt in zip(p[~zero][:20], t[~zero][:20], strict=True)
    ]
    assert worst(given[~zero][:20], exact) <= HALF
