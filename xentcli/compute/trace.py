"""The step-by-step record of one sample: every value ``xent compute`` shows.

A :class:`Trace` is built by :func:`build_trace` from the kernel
(:func:`xentcli.core.softmax_steps` and :func:`xentcli.core.row_losses`); this module
adds only what the kernel does not compute: the gradient of the row loss, the unshifted
sum of exponentials, ``1 - q_i`` for a confident prediction, the perplexity, and the
naive textbook computation that ``--naive`` puts beside the stable one.

The row loss is PyTorch's per-row loss (``reduction="none"``), written for every option
at once as

    L = sum_c a_c * (-log q_c),   a_c = w_c * p_c,

where ``w`` are the class weights (all 1 without ``--weights``) and ``p`` is the target
distribution actually used: the one-hot row of the label, mixed with the uniform
distribution by label smoothing, ``p = (1 - eps) * onehot + eps / K``, or the soft
target row (also smoothed when asked). Since ``d(-log q_c)/dz_k = q_k - [k == c]`` for
the logits ``z`` that the softmax sees, the gradient is

    dL/dz_k = q_k * A - a_k,      A = sum_c a_c,

which is ``w_i * (q - onehot)`` for a plain label, and ``q - p`` without weights. With a
temperature ``T`` the softmax sees ``z = y / T``, so ``dL/dy = (dL/dz) / T``; in bits or
bans everything is divided by ``ln 2`` or ``ln 10``.

>>> t = build_trace([1.2, 2.3, 0.8], 1)
>>> round(t.loss, 12), round(t.sum_exp_shifted, 11), t.units
(0.442119225143, 1.55600124385, 'nats')
>>> [round(g, 6) for g in t.gradient]
[0.213927, -0.357327, 0.1434]
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xentcli.core import (
    LN_BASE,
    UNITS,
    ScoreCheck,
    check_base,
    check_kind,
    check_scores,
    cross_entropy,
    default_sum_tolerance,
    log_of_scores,
    row_losses,
    row_totals,
    softmax_steps,
    to_base,
)
from xentcli.errors import InvalidInputError

#: what the table, the derivation and JSON say when there is no label or target
NO_TARGET_HINT = "A label (--label) or a soft target (--target) adds the loss and its gradient."


def _scalar(value: object) -> float:
    """The one element of a kernel result of shape ``()`` or ``(1,)`` as a float."""
    return float(np.asarray(value, dtype=np.float64).reshape(-1)[0])


def _floats(values: object) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1))


@dataclass(frozen=True)
class NaiveTrace:
    """The textbook computation ``q = e^z / sum e^z``, ``L = -log q_i``, in float64.

    Kept to show where it fails: ``e^z`` overflows to ``inf`` for ``z > 709.78`` (then
    ``q = inf / inf = nan``), underflows to 0 for ``z < -745`` (then ``q = 0 / 0``), and
    ``q_i`` rounds to exactly 1 for a confident prediction, so that ``-log q_i = 0``.
    """

    exp: tuple[float, ...]  #: e^z_k, unshifted
    sum_exp: float  #: sum_k e^z_k (inf on overflow, 0 on underflow)
    probabilities: tuple[float, ...]  #: e^z_k / sum (nan when the sum is inf or 0)
    loss: float  #: -sum_c a_c log q_c, in the trace's units (nan without a target)

    @property
    def overflow(self) -> bool:
        """Whether some ``e^z_k`` overflowed float64 to ``inf``."""
        return any(math.isinf(v) for v in self.exp)

    @property
    def underflow(self) -> bool:
        """Whether the whole sum ``sum_k e^z_k`` underflowed to 0."""
        return self.sum_exp == 0.0

    @property
    def nan(self) -> bool:
        """Whether some naive probability is ``nan`` (``inf/inf`` or ``0/0``)."""
        return any(math.isnan(v) for v in self.probabilities)


@dataclass(frozen=True)
class Trace:
    """Every intermediate value of the softmax and cross-entropy of one sample.

    Lists are tuples of floats, one per class. ``z`` below is ``logits / temperature``,
    what the softmax sees. Loss-valued fields (``loss``, ``contributions``,
    ``gradient``) are in :attr:`units`; ``log_*`` fields are natural logarithms.
    """

    logits: tuple[float, ...]  #: the logits y as given
    classes: tuple[str, ...]  #: class names (their indices when none are given)
    label: int | None  #: true class index, None with soft targets
    targets_given: tuple[float, ...] | None  #: the soft target row as given, if any
    targets: tuple[float, ...]  #: the target distribution p used in the loss
    temperature: float
    label_smoothing: float
    weights: tuple[float, ...] | None  #: class weights w, None when not given
    base: str  #: "e", "2" or "10"
    units: str  #: "nats", "bits" or "bans"
    scaled: tuple[float, ...]  #: z = y / T (the logits when T = 1)
    max: float  #: m = max_k z_k
    argmax: int  #: first index of the max (the predicted class)
    shifted: tuple[float, ...]  #: z_k - m
    exp_shifted: tuple[float, ...]  #: e^(z_k - m)
    sum_exp_shifted: float  #: s = sum_k e^(z_k - m), in [1, K]
    log_sum_exp_shifted: float  #: log s
    log_sum_exp: float  #: m + log s = log sum_k e^z_k
    sum_exp: float | None  #: s * e^m, None when not representable in float64
    probabilities: tuple[float, ...]  #: q_k
    log_probabilities: tuple[float, ...]  #: log q_k = (z_k - m) - log s
    contributions: tuple[float, ...]  #: a_k * (-log q_k), in units (0 where a_k = 0)
    gradient: tuple[float, ...]  #: dL/dy_k, in units per unit of logit
    loss: float  #: the row loss L, in units
    loss_nats: float  #: the row loss L, in nats
    perplexity: float  #: e^(L in nats), which is also b^L for L in units of base b
    one_minus_q: float | None  #: 1 - q_i for the true class, to full precision
    naive: NaiveTrace
    #: what was given: "logits", or "probs" / "logprobs" (then :attr:`logits` are the
    #: logits they imply, ``log q``, and :attr:`given` holds the values as given)
    scores: str = "logits"
    given: tuple[float, ...] | None = None  #: the probabilities or log-probabilities given
    #: the given row's total: the sum of the probabilities, or the log-sum-exp of the
    #: log-probabilities (None for logits)
    given_total: float | None = None
    given_tolerance: float | None = None  #: how far that total may be from 1 (from 0)
    #: the kind of scores was detected (``xent compute --from`` with ``--scores auto``)
    scores_detected: bool = False

    @property
    def from_given(self) -> bool:
        """Whether q is the given distribution itself (probabilities or log-probabilities
        at temperature 1): no softmax is computed, the derivation starts from q."""
        return self.given is not None and self.temperature == 1.0

    # H(p) and KL(p || q) are computed when first read (the table shows them for soft
    # targets only): their double-double arithmetic was 10-30 ms of a ~200 ms start-up.
    @functools.cached_property
    def entropy(self) -> float:
        """``H(p) = -sum p_k log p_k`` of the target used, in :attr:`units`."""
        from xentcli.core import entropy

        return float(to_base(float(entropy(np.asarray(self.targets))), self.base))

    @functools.cached_property
    def kl_divergence(self) -> float:
        """``KL(p || q) = sum p_k log(p_k / q_k)``, in :attr:`units`."""
        from xentcli.core import kl_divergence

        divergence = kl_divergence(
            np.asarray(self.logits), np.asarray(self.targets), temperature=self.temperature
        )
        return float(to_base(float(divergence), self.base))

    @property
    def soft(self) -> bool:
        """Whether the target is not one-hot (soft, or smoothed): H(p) > 0."""
        return self.has_target and (self.targets_given is not None or self.label_smoothing > 0)

    @property
    def has_target(self) -> bool:
        """Whether a label or a target was given: without one there is no loss, and
        ``targets``, ``contributions`` and ``gradient`` are zeros, ``loss``, ``loss_nats``
        and ``perplexity`` nan (renderers show the softmax only)."""
        return self.label is not None or self.targets_given is not None

    @property
    def num_classes(self) -> int:
        """K, the number of classes."""
        return len(self.logits)

    @property
    def effective_weights(self) -> tuple[float, ...]:
        """The class weights, all 1.0 when none were given."""
        return self.weights if self.weights is not None else (1.0,) * self.num_classes

    @property
    def coefficients(self) -> tuple[float, ...]:
        """``a_k = w_k * p_k``: the factor of ``-log q_k`` in the loss."""
        return tuple(w * p for w, p in zip(self.effective_weights, self.targets, strict=True))

    @property
    def log_base(self) -> float:
        """``ln b``, the divisor that turns nats into :attr:`units`."""
        return LN_BASE[self.base]


def _target_row(
    k: int,
    label: int | None,
    targets: Sequence[float] | None,
    label_smoothing: float,
) -> tuple[float, ...]:
    """The target distribution p as the kernel uses it (smoothing included)."""
    if targets is not None:
        base = np.asarray(targets, dtype=np.float64)
    else:
        base = np.zeros(k)
        if label is None:  # no target: no loss, nothing to smooth
            return _floats(base)
        base[label] = 1.0
    if label_smoothing:
        base = (1.0 - label_smoothing) * base + label_smoothing / k
    return _floats(base)


def _gradient(
    q: tuple[float, ...],
    log_q: tuple[float, ...],
    coefficients: tuple[float, ...],
    scale: float,
) -> tuple[float, ...]:
    """``(q_k * A - a_k) / scale`` with ``A = sum a``, without cancellation near q_k = 1.

    Where ``a_k = 0`` it is ``q_k * A`` (exactly ``q_k`` without weights or smoothing).
    Otherwise, for ``q_k > 1/2`` the term is rewritten as ``(A - a_k) - A * (1 - q_k)``: ``A - a_k``
    is a sum of non-negative terms and ``1 - q_k = -expm1(log q_k)`` is accurate even
    where ``q_k`` itself rounds to 1 (logits [0, -40]: 1 - q_0 = 4.2e-18).
    """
    total = math.fsum(coefficients)
    out = []
    for k, (q_k, a_k) in enumerate(zip(q, coefficients, strict=True)):
        if a_k == 0:
            # Nothing cancels: q_k * A is one rounding (q_k itself when A = 1, as for a
            # plain label), where the rewriting below would round twice more.
            value = q_k * total
        elif q_k > 0.5:
            rest = math.fsum(a for j, a in enumerate(coefficients) if j != k)
            value = rest - total * -math.expm1(log_q[k])
        else:
            value = q_k * total - a_k
        out.append(value / scale)
    return tuple(out)


def _unshifted_sum(s: float, m: float) -> float | None:
    """``s * e^m`` (the textbook denominator), or None when float64 cannot hold it."""
    try:
        value = s * math.exp(m)
    except OverflowError:
        return None
    if math.isinf(value) or value < sys.float_info.min:
        return None
    return value


def _naive(
    z: np.ndarray, coefficients: tuple[float, ...], log_base: float, has_target: bool = True
) -> NaiveTrace:
    # The textbook formula, with float64's overflow to inf and 0/0 = nan left to happen:
    # showing them is the point. The errstate keeps numpy from warning about it.
    a = np.asarray(coefficients, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        e = np.exp(z)
        total = np.sum(e)
        q = e / total
        terms = np.where(a > 0, a * -np.log(q), 0.0)
        loss = float(np.sum(terms)) / log_base + 0.0  # + 0.0 turns -0.0 into 0.0
    if not has_target:
        loss = math.nan
    return NaiveTrace(exp=_floats(e), sum_exp=float(total), probabilities=_floats(q), loss=loss)


def build_trace(
    logits: Sequence[float],
    label: int | None = None,
    *,
    targets: Sequence[float] | None = None,
    weights: Sequence[float] | None = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    base: str = "e",
    classes: Sequence[str] | None = None,
    exact: bool = False,
    scores: str = "logits",
) -> Trace:
    """Work one sample through the stable softmax and the cross-entropy loss.

    Parameters
    ----------
    logits
        One row of K logits: finite floats or ``-inf`` (a masked class).
    label
        The true class index in ``[0, K)``; give at most one of ``label`` and ``targets``
        (with neither, the trace holds the softmax only: see :attr:`Trace.has_target`).
    targets
        A soft target row: K probabilities summing to 1.
    weights
        K non-negative class weights (PyTorch's ``weight``).
    label_smoothing
        ``eps`` in ``[0, 1]``: the target becomes ``(1 - eps) * p + eps / K``.
    temperature
        ``T > 0``: the logits are divided by T first.
    base
        ``"e"`` (nats), ``"2"`` (bits) or ``"10"`` (bans).
    classes
        K class names, for display.
    exact
        The kernel's correctly rounded path: the max, the exponentials, their sum, its
        log, the log-sum-exp, the probabilities, their logs and the loss are each the
        float64 nearest the exact value.
    scores
        What *logits* holds: ``"logits"``, or ``"probs"`` / ``"logprobs"``, checked as
        ``xent batch`` checks them (each value, and the row's total within
        :func:`~xentcli.core.default_sum_tolerance`). The trace's ``logits`` are then the
        logits they imply, ``log q`` (up to an additive constant); at temperature 1 the
        probabilities are the given ones and the loss is ``-log q_label`` of the given
        float, with an infinite loss for a probability of 0 at the label.

    Raises
    ------
    xentcli.errors.InvalidInputError
        For invalid input, with ``field`` naming what is wrong ("logit", "label",
        "target", "weight", "class", "score") where it is one option's fault.

    Examples
    --------
    >>> t = build_trace([0.0, -40.0], 0)
    >>> t.loss, t.one_minus_q, t.naive.loss
    (4.248354255291589e-18, 4.248354255291589e-18, 0.0)
    >>> build_trace([1000.0, 1001.0, 1002.0], 0).naive.probabilities
    (nan, nan, nan)
    """
    check_base(base)
    if label is not None and targets is not None:
        raise InvalidInputError("give at most one of label and targets")
    kind = check_kind(scores)
    given = given_total = tolerance = None
    if kind != "logits":
        given, given_total, tolerance = _given_row(logits, kind)
        logits = _floats(log_of_scores(np.asarray([given], dtype=np.float64), kind))
    steps = softmax_steps(
        np.asarray(logits, dtype=np.float64), temperature=temperature, exact=exact
    )
    y = _floats(logits)
    k = len(y)
    if classes is not None and len(classes) != k:
        raise InvalidInputError(
            f"expected {k} class names (one per logit), got {len(classes)}", field="class"
        )
    if targets is not None and len(targets) != k:
        raise InvalidInputError(
            f"expected {k} target values (one per logit), got {len(targets)}", field="target"
        )
    if weights is not None and len(weights) != k:
        raise InvalidInputError(
            f"expected {k} weights (one per logit), got {len(weights)}", field="weight"
        )
    has_target = label is not None or targets is not None
    rows = row_losses(  # without a target, class 0 stands in: the options are still checked
        np.asarray([y if given is None else given]),
        None if targets is not None else [0 if label is None else label],
        targets=None if targets is None else np.asarray([targets], dtype=np.float64),
        weights=None if weights is None else np.asarray(weights, dtype=np.float64),
        label_smoothing=label_smoothing,
        temperature=temperature,
        exact=exact,
        scores=kind,
    )
    loss_nats = _scalar(rows.loss) if has_target else math.nan
    loss_in_base = float(to_base(loss_nats, base))
    if exact and has_target and base != "e":  # one rounding from the exact loss
        loss_in_base = float(
            cross_entropy(
                np.asarray([y if given is None else given]),
                None if targets is not None else [label or 0],
                targets=None if targets is None else np.asarray([targets], dtype=np.float64),
                weights=None if weights is None else np.asarray(weights, dtype=np.float64),
                label_smoothing=label_smoothing,
                temperature=temperature,
                base=base,
                reduction="none",
                exact=True,
                scores=kind,
            )[0]  # type: ignore[index]
        )
    log_base = LN_BASE[base]
    p = _target_row(k, label, targets, label_smoothing)
    w = _floats(weights) if weights is not None else None
    a = tuple(wk * pk for wk, pk in zip(w if w is not None else (1.0,) * k, p, strict=True))
    q = _floats(steps.probabilities)
    log_q = _floats(steps.log_probabilities)
    one_minus_q = -math.expm1(log_q[label]) if label is not None else None
    if given is not None and temperature == 1.0:
        # The given distribution is q itself: no softmax of the implied logits (which
        # would divide by their total, within the tolerance of 1 but not 1).
        log_q = y
        q = given if kind == "probs" else _floats(np.exp(np.asarray(given)))
        if kind == "probs" and label is not None:
            one_minus_q = 1.0 - q[label]  # exact for q >= 1/2 (Sterbenz)
    # 0 * log 0 = 0: a masked class (q = 0) with no target weight contributes nothing.
    contributions = tuple(
        (a_k * -lq) / log_base + 0.0 if a_k > 0 else 0.0 for a_k, lq in zip(a, log_q, strict=True)
    )
    z = np.asarray(y, dtype=np.float64)
    if temperature != 1.0:
        # y / T may overflow to inf (y = 1e308, T = 0.5), as the kernel's max does; the
        # kernel's shifted values stay exact, and that inf is what float64 can show.
        with np.errstate(over="ignore"):
            z = z / temperature
    m = _scalar(steps.max)
    s = _scalar(steps.sum_exp_shifted)
    try:
        perplexity = math.exp(loss_nats)
    except OverflowError:
        perplexity = math.inf
    return Trace(
        logits=y,
        classes=tuple(classes) if classes is not None else tuple(str(i) for i in range(k)),
        label=label,
        targets_given=_floats(targets) if targets is not None else None,
        targets=p,
        temperature=float(temperature),
        label_smoothing=float(label_smoothing),
        weights=w,
        base=base,
        units=UNITS[base],
        scaled=_floats(z),
        max=m,
        argmax=int(np.asarray(steps.argmax).reshape(-1)[0]),
        shifted=_floats(steps.shifted),
        exp_shifted=_floats(steps.exp_shifted),
        sum_exp_shifted=s,
        log_sum_exp_shifted=_scalar(steps.log_sum_exp_shifted),
        log_sum_exp=_scalar(steps.log_sum_exp),
        sum_exp=_unshifted_sum(s, m),
        probabilities=q,
        log_probabilities=log_q,
        contributions=contributions,
        gradient=_gradient(q, log_q, a, temperature * log_base),
        loss=loss_in_base,
        loss_nats=loss_nats,
        perplexity=perplexity,
        one_minus_q=one_minus_q,
        naive=_naive(z, a, log_base, has_target),
        scores=kind,
        given=given,
        given_total=given_total,
        given_tolerance=tolerance,
    )


def _given_row(values: Sequence[float], kind: str) -> tuple[tuple[float, ...], float, float]:
    """The given probabilities or log-probabilities, checked as ``xent batch`` checks a
    row (each value, then the row's total within the default tolerance), with that total
    and the tolerance."""
    score_kind = check_kind(kind)
    row = np.asarray([values], dtype=np.float64)
    tolerance = default_sum_tolerance(max(row.shape[1], 2))
    check_scores(row, ScoreCheck(score_kind, tolerance))
    return _floats(row), float(row_totals(row, score_kind)[0]), tolerance
