"""The numerics of xent on numpy arrays: softmax, log-softmax, log-sum-exp, cross-entropy.

Pure numpy: no I/O, no printing. Every function accepts one row of logits (shape ``(K,)``)
or a batch of rows (shape ``(N, K)``) and works along the last axis.

How the results stay within a few units in the last place (ulp) for any float64 input:

- the shift ``y_k - m`` is computed exactly, as an unevaluated sum ``hi + lo`` (TwoSum),
  and the low part is carried into the exponential as ``exp(hi) * (1 + lo)``; otherwise
  the rounding of ``y_k - m`` would cost about ``|y_k - m| / 2`` ulp through ``exp``;
- ``s - 1 = sum over k != argmax of exp(y_k - m)`` is summed with error-free
  transformations (a pairwise TwoSum tree) and ``log s = log1p(s - 1)``, so a confident,
  correct prediction keeps its tiny loss to full relative precision;
- a temperature divides the exact shift ``(y - m) / T`` with an exact remainder (Dekker's
  TwoProduct), not the rounded logits;
- means and sums of row losses are exact (:class:`ExactSum`) and rounded once, so they do
  not depend on the order or the chunking of the rows.

Accuracy, measured against an independent mpmath reference (tests/test_kernel.py): row
losses and log-probabilities within 2 ulp, probabilities within 3 ulp, smoothed and
soft-target losses within 4 ulp, means within 2 ulp of the exact mean, for any float64
logits (magnitudes up to 1.8e308, subnormal differences, -inf masks, K = 1 to 100000).
The log-sum-exp ``m + log s`` is within 2 ulp of the larger of ``|m|`` and ``log s``
(when a negative max and log s cancel, the absolute error is what remains).

Rows are processed in blocks (about 1 MB of float64), transposed to ``(K, rows)`` so
that every reduction over the classes is a contiguous, vectorized operation and the
temporaries stay in cache; big batches use two threads (numpy releases the GIL; the
environment variable XENT_THREADS sets another count, 1 for none).

This module holds the public functions; the pieces they are built from have their own
modules: :mod:`xentcli.core._validation` (input checks), :mod:`xentcli.core._compensated` (TwoSum,
TwoProduct, compensated sums), :mod:`xentcli.core._softmax_block` (the shift, exponentials and
``log s`` of one block), :mod:`xentcli.core._loss_block` (the loss terms of one block),
:mod:`xentcli.core._blocks` (blocks, threads, scratch memory), :mod:`xentcli.core._exactsum`
(exact sums and means) and :mod:`xentcli.core._units` (nats, bits, bans). Everything other
modules use is importable from here.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from xentcli.core import _blocks as blockrunner
from xentcli.core._compensated import divide_dd
from xentcli.core._exactsum import ExactSum, fraction_to_base
from xentcli.core._given import given_row_losses
from xentcli.core._loss_block import (
    binary_rows,
    exact_row_loss,
    label_loss,
    soft_loss,
    uniform_loss,
)
from xentcli.core._results import RowLosses, smoothing_weights
from xentcli.core._scores import ScoreKind, check_kind
from xentcli.core._softmax_block import (
    flat,
    label_ranks,
    probabilities,
    shift,
    sums_of_squares,
    transposed,
)
from xentcli.core._units import UNITS, Base, check_base, to_base
from xentcli.core._validation import (
    TARGET_SUM_TOLERANCE,
    check_logit_values,
    check_masked_rows,
    check_smoothing,
    check_targets,
    check_temperature,
    check_weights,
    logits_array,
    validate_labels,
)
from xentcli.errors import InvalidInputError

__all__ = [
    "TARGET_SUM_TOLERANCE",
    "UNITS",
    "Base",
    "ExactSum",
    "Reduction",
    "RowLosses",
    "SoftmaxSteps",
    "cross_entropy",
    "fraction_to_base",
    "log_softmax",
    "logsumexp",
    "row_losses",
    "softmax",
    "softmax_steps",
    "to_base",
]

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Reduction = Literal["mean", "sum", "none"]
_Array = TypeVar("_Array", bound=npt.NDArray[np.generic])


class SoftmaxSteps(NamedTuple):
    """The intermediate values of the stable softmax of one row or a batch of rows.

    With a temperature T the logits are ``y / T``: ``max`` is ``max(y) / T`` (rounded)
    and ``shifted`` is ``(y - max(y)) / T`` rounded once, with its exact remainder in
    ``shifted_lo``.
    """

    max: FloatArray  #: m = max_j y_j, shape (N,) or ()
    argmax: IntArray  #: first index of the max
    shifted: FloatArray  #: y - m (<= 0), rounded
    exp_shifted: FloatArray  #: exp(y - m)
    sum_exp_shifted: FloatArray  #: s = sum_k exp(y_k - m) >= 1
    log_sum_exp_shifted: FloatArray  #: log s (to full relative precision when s ~ 1)
    log_sum_exp: FloatArray  #: m + log s
    probabilities: FloatArray  #: q = exp(y - m) / s
    log_probabilities: FloatArray  #: (y - m) - log s
    shifted_lo: FloatArray  #: exact remainder: y - m = shifted + shifted_lo


def softmax_steps(
    logits: ArrayLike, *, temperature: float = 1.0, exact: bool = False
) -> SoftmaxSteps:
    """Every intermediate value of the stable softmax, for one row or a batch.

    Parameters
    ----------
    logits : array_like
        Shape ``(K,)`` or ``(N, K)``; finite floats or ``-inf`` (a masked class).
    temperature : float
        The logits are divided by it (exactly: the shifted logits are divided).
    exact : bool
        Every value correctly rounded (``exp_shifted``, ``sum_exp_shifted``, the logs,
        the probabilities): the same bits on every machine; slower.

    Returns
    -------
    SoftmaxSteps
        Per-row fields have shape ``(N,)`` (``()`` for a 1-D input), per-class fields
        the shape of *logits*.

    Examples
    --------
    >>> st = softmax_steps([1.2, 2.3, 0.8])
    >>> float(st.max), int(st.argmax), float(st.sum_exp_shifted)
    (2.3, 1, 1.556001243846...)
    >>> st.shifted
    array([-1.1, 0. , -1.5])
    """
    if exact:
        got = _exact_parts(logits, temperature, _EXACT_STEPS)
        return SoftmaxSteps(
            max=got["m"], argmax=got["argmax"], shifted=got["hi"],  # type: ignore[arg-type]
            exp_shifted=got["e"], sum_exp_shifted=got["s"], log_sum_exp_shifted=got["log_s"],
            log_sum_exp=got["lse"], probabilities=got["q"], log_probabilities=got["lq"],
            shifted_lo=got["lo"],
        )  # fmt: skip
    parts = _softmax_parts(logits, temperature, "steps")
    return _asked(parts.steps)


_EXACT_STEPS = frozenset(("hi", "lo", "e", "q", "lq", "m", "s", "log_s", "lse", "argmax"))


def _exact_parts(
    logits: ArrayLike, temperature: float, parts: frozenset[str]
) -> dict[str, FloatArray]:
    """The correctly rounded parts (:mod:`xentcli.core._exact_kernel`), shaped as given."""
    from xentcli.core import _exact_kernel

    check_temperature(temperature)
    array = logits_array(logits)
    one_row = array.ndim == 1
    got = _exact_kernel.softmax_parts(
        array[None, :] if one_row else array, temperature, parts, one_row
    )
    if temperature != 1.0 and "m" in got:
        got["m"] = divide_dd(got["m"], np.zeros_like(got["m"]), temperature)[0]  # max / T
    return {name: a[0] if one_row else a for name, a in got.items()}


_Part = Literal["probabilities", "log_probabilities", "log_sum_exp", "steps"]


@dataclass(frozen=True)
class _Parts:
    """What :func:`_softmax_parts` computed: the part asked for, None for the others."""

    probabilities: FloatArray | None
    log_probabilities: FloatArray | None
    log_sum_exp: FloatArray | None
    steps: SoftmaxSteps | None


_T = TypeVar("_T")


def _asked(part: _T | None) -> _T:
    """A part of :class:`_Parts` that was asked for (so it is not None)."""
    assert part is not None, "a part of the softmax that was not computed"
    return part


def _softmax_parts(logits: ArrayLike, temperature: float, part: _Part) -> _Parts:
    """One part of the softmax (or, for ``"steps"``, every intermediate value)."""
    check_temperature(temperature)
    array = logits_array(logits)
    one_row = array.ndim == 1
    y = array[None, :] if one_row else array
    n, k = y.shape
    steps = part == "steps"

    def per_class(asked: bool) -> FloatArray | None:
        return np.empty((n, k)) if asked else None

    def per_row(asked: bool) -> FloatArray | None:
        return np.empty(n) if asked else None

    hi, lo, e_out = per_class(steps), per_class(steps), per_class(steps)
    q = per_class(steps or part == "probabilities")
    lq = per_class(steps or part == "log_probabilities")
    m, s, log_s = per_row(steps), per_row(steps), per_row(steps)
    lse = per_row(steps or part == "log_sum_exp")
    argmax: IntArray = np.empty(n, dtype=np.int64)

    def work(start: int, stop: int) -> None:
        arena = blockrunner.arena(blockrunner.ARENA_BLOCKS * (stop - start) * k)
        xt = transposed(y[start:stop], arena)
        sh = shift(
            xt,
            temperature,
            arena,
            lambda block: check_logit_values(block, start, transposed=True),
            y[start:stop],
        )
        check_masked_rows(sh.max, start, one_row)
        argmax[start:stop] = sh.argmax
        e = sh.exp
        e.ravel()[flat(sh.argmax, stop - start)] = 1.0
        rows = slice(start, stop)
        if hi is not None and lo is not None and e_out is not None:
            hi[rows] = sh.hi.T
            lo[rows] = sh.lo.T
            e_out[rows] = (e + e * sh.lo).T
        if q is not None:
            q[rows] = probabilities(e, sh.lo, sh.s_hi, sh.s_lo).T
        if lq is not None:
            lq[rows] = (sh.hi + (sh.lo - sh.log_s)).T
        if lse is None:
            return
        m_hi, m_lo = sh.max, np.zeros_like(sh.max)
        if temperature != 1.0:
            m_hi, m_lo = divide_dd(sh.max, np.zeros_like(sh.max), temperature)
            m_lo[~np.isfinite(m_hi)] = 0.0  # max / T beyond the float range
        lse[rows] = m_hi + (m_lo + sh.log_s)
        if m is not None and s is not None and log_s is not None:
            m[rows] = m_hi
            s[rows] = sh.s_hi + sh.s_lo
            log_s[rows] = sh.log_s

    blockrunner.run(blockrunner.plan(n, k), work, k)

    def shape(a: _Array) -> _Array:
        return a[0] if one_row else a

    def shaped(a: FloatArray | None) -> FloatArray | None:
        return None if a is None else shape(a)

    return _Parts(
        probabilities=shaped(q),
        log_probabilities=shaped(lq),
        log_sum_exp=shaped(lse),
        steps=SoftmaxSteps(
            max=shape(_asked(m)),
            argmax=shape(argmax),
            shifted=shape(_asked(hi)),
            exp_shifted=shape(_asked(e_out)),
            sum_exp_shifted=shape(_asked(s)),
            log_sum_exp_shifted=shape(_asked(log_s)),
            log_sum_exp=shape(_asked(lse)),
            probabilities=shape(_asked(q)),
            log_probabilities=shape(_asked(lq)),
            shifted_lo=shape(_asked(lo)),
        )
        if steps
        else None,
    )


def softmax(logits: ArrayLike, *, temperature: float = 1.0, exact: bool = False) -> FloatArray:
    """Softmax along the last axis, shifted by the max so that it never overflows.

    Parameters
    ----------
    logits : array_like
        Shape ``(K,)`` or ``(N, K)``; ``-inf`` marks a masked class (probability 0).
    temperature : float
        Divide the logits by this positive number first.
    exact : bool
        Correctly rounded probabilities (the same bits on every machine); slower.

    Returns
    -------
    numpy.ndarray
        Probabilities, each within 3 ulp of the exact value (correctly rounded with
        *exact*).

    Examples
    --------
    >>> softmax([1.2, 2.3, 0.8]).round(6)
    array([0.213927, 0.642673, 0.1434  ])
    >>> softmax([[1000.0, 1000.0, -np.inf]])
    array([[0.5, 0.5, 0. ]])
    """
    if exact:
        return _exact_parts(logits, temperature, frozenset(("q",)))["q"]
    return _asked(_softmax_parts(logits, temperature, "probabilities").probabilities)


def log_softmax(logits: ArrayLike, *, temperature: float = 1.0, exact: bool = False) -> FloatArray:
    """Log-softmax along the last axis: ``(y - max) - log sum exp(y - max)``.

    *logits* (``(K,)`` or ``(N, K)``), *temperature* and *exact* as in :func:`softmax`.

    Returns
    -------
    numpy.ndarray
        ``log q``, each within about 2 ulp of the exact value.

    Examples
    --------
    >>> log_softmax([0.0, -40.0])
    array([-4.24835426e-18, -4.00000000e+01])
    """
    if exact:
        return _exact_parts(logits, temperature, frozenset(("lq",)))["lq"]
    return _asked(_softmax_parts(logits, temperature, "log_probabilities").log_probabilities)


def logsumexp(logits: ArrayLike, *, temperature: float = 1.0, exact: bool = False) -> FloatArray:
    """``log sum_k exp(y_k)`` along the last axis, without overflow.

    *logits* (``(K,)`` or ``(N, K)``), *temperature* and *exact* as in :func:`softmax`.

    Returns
    -------
    numpy.ndarray
        Shape ``()`` or ``(N,)``.

    Examples
    --------
    >>> float(logsumexp([1000.0, 1000.0]))
    1000.6931471805599
    >>> logsumexp([[0.0, 0.0], [1e308, 1e308]])
    array([6.93147181e-001, 1.00000000e+308])
    """
    if exact:
        return _exact_parts(logits, temperature, frozenset(("lse",)))["lse"]
    return _asked(_softmax_parts(logits, temperature, "log_sum_exp").log_sum_exp)


def row_losses(
    logits: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    targets: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    check: bool = True,
    exact: bool = False,
    scores: ScoreKind = "logits",
    sum_tolerance: float | None = None,
    renormalize: bool = False,
    clip: float | None = None,
    target_tolerance: float | None = None,
    metric_inputs: bool = False,
) -> RowLosses:
    """Per-row losses (nats) and what the mean needs, for a 2-D batch.

    Parameters
    ----------
    logits, labels, targets, weights, ignore_index, label_smoothing, temperature
        As in :func:`cross_entropy`.
    check : bool
        ``False`` skips validating the logits, labels and targets (a caller that has
        validated them already, such as the CSV reader). Invalid data then gives
        meaningless numbers instead of an error.
    exact : bool
        Correctly rounded row losses and label probabilities (the float64 nearest the
        exact value; the same bits on every machine), with their double-double
        remainders for exact means; slower (see docs/accuracy.md).
    scores, sum_tolerance, renormalize, clip
        As in :func:`cross_entropy`.
    target_tolerance : float, optional
        How far from 1 a soft-target row may sum (default
        :func:`~xentcli.core.default_sum_tolerance` of K).
    metric_inputs : bool
        Also the label's rank, the top probability and the sum of squared
        probabilities (:class:`RowLosses`), for logits with labels on the default path
        (other paths leave them None). They come from the kernel's own exponentials:
        computing them afterwards from the rows costs as much again at K = 1000.

    Returns
    -------
    RowLosses
        ``loss`` is the row's loss as PyTorch's ``reduction="none"`` defines it; the mean
        is ``ExactSum(loss).ratio(ExactSum(weight))``, which is what
        :func:`cross_entropy` returns.

    Examples
    --------
    >>> r = row_losses([[1.2, 2.3, 0.8], [0.0, 0.0, 0.0]], [1, 2])
    >>> r.loss
    array([0.44211923, 1.09861229])
    >>> r.predicted, r.weight
    (array([1, 0]), array([1., 1.]))
    >>> r = row_losses([[1.2, 2.3, 0.8], [0.0, 0.0, 0.0]], [1, 2], metric_inputs=True)
    >>> r.label_rank, r.max_probability.round(6)
    (array([0, 2]), array([0.642673, 0.333333]))
    """
    if check_kind(scores) != "logits":
        return given_row_losses(
            logits,  # type: ignore[arg-type]
            scores,
            labels,
            targets,
            weights=weights,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            temperature=temperature,
            check=check,
            sum_tolerance=sum_tolerance,
            renormalize=renormalize,
            clip=clip,
            kernel=row_losses,
            exact=exact,
        )
    if clip is not None:
        raise InvalidInputError("clip applies to probabilities and log-probabilities")
    check_temperature(temperature)
    eps = check_smoothing(label_smoothing)
    array = logits_array(logits)
    y = array[None, :] if array.ndim == 1 else array
    n, k = y.shape
    if (labels is None) == (targets is None):
        raise InvalidInputError("give exactly one of labels and targets")
    w = check_weights(weights, k)
    if ignore_index is not None and not isinstance(ignore_index, (int, np.integer)):
        raise InvalidInputError("ignore_index must be an integer", value=ignore_index)

    t: FloatArray | None = None
    lab = np.zeros(n, dtype=np.int64)
    counted = np.ones(n, dtype=bool)
    if targets is not None:
        t = np.asarray(targets, dtype=np.float64)
        if t.ndim == 1:
            t = t[None, :]
        if t.shape != (n, k):
            raise InvalidInputError(
                f"targets: expected shape {(n, k)}, got {t.shape}", field="target"
            )
    else:
        lab = validate_labels(labels, n, k, ignore_index, check)  # type: ignore[arg-type]
        if ignore_index is not None:
            counted = lab != ignore_index
            lab = np.where(counted, lab, 0)

    loss = np.empty(n)
    label_q = np.full(n, np.nan)
    predicted = np.empty(n, dtype=np.int64)
    binary_path = k == 2 and t is None and not eps
    facts = metric_inputs and t is None and not exact and not binary_path
    rank = np.empty(n, dtype=np.int64) if facts else None
    top_q = np.empty(n) if facts else None
    squares = np.empty(n) if facts else None
    # (1 - eps) and eps / K as double-doubles: the smoothing weights are exact.
    keep, share = smoothing_weights(eps, k) if eps else ((1.0, 0.0), (0.0, 0.0))
    w_total = float(math.fsum(w.tolist())) if w is not None else float(k)
    if exact:
        from xentcli.core import _exact_kernel

        got = _exact_kernel.row_losses(
            y, lab, t, w, eps, keep, share, temperature, check, array.ndim == 1
        )
        return _finish(got.loss, got.label_probability, got.predicted, lab, t, w, counted,
                       ignore_index, got.loss_lo, got.loss_err)  # fmt: skip

    def work(start: int, stop: int) -> None:
        arena = blockrunner.arena(blockrunner.ARENA_BLOCKS * (stop - start) * k)
        xt = transposed(y[start:stop], arena)

        def check_values(block: FloatArray) -> None:
            check_logit_values(block, start, transposed=True)

        binary = binary_rows(xt, lab[start:stop], w, temperature) if binary_path else None
        if binary is not None:
            # Binary rows: the same arithmetic on (b,) vectors, without the class-axis
            # machinery whose per-row bookkeeping costs more than the work for K = 2.
            am, m, loss[start:stop], label_q[start:stop] = binary
            if check and not np.isfinite(m).all():  # NaN and +inf reach the max
                check_values(xt)
                check_masked_rows(m, start, array.ndim == 1)
            predicted[start:stop] = am
            return
        if rank is not None:  # before shift overwrites the block
            rank[start:stop] = label_ranks(xt, lab[start:stop])
        sh = shift(xt, temperature, arena, check_values if check else None, y[start:stop])
        if check:
            check_masked_rows(sh.max, start, array.ndim == 1)
        predicted[start:stop] = sh.argmax
        if t is not None:
            tt = transposed(t[start:stop], arena)
            if check:
                check_targets(tt, start, target_tolerance)
            if w is not None:
                tt *= w[:, None]
            main = soft_loss(sh, tt, arena)
        else:
            li = lab[start:stop]
            at = flat(li, stop - start)
            lo_i = np.take(sh.lo, at)
            main = label_loss(-np.take(sh.hi, at), sh.log_s - lo_i, li, w)
            e_i = np.take(sh.exp, at)
            np.copyto(e_i, 1.0, where=li == sh.argmax)
            label_q[start:stop] = probabilities(e_i, lo_i, sh.s_hi, sh.s_lo)
            if top_q is not None and squares is not None:
                # sh.exp is 0 at the argmax, whose exp(0) = 1 is added back
                s = sh.s_hi + sh.s_lo
                top_q[start:stop] = 1.0 / s
                squares[start:stop] = (sums_of_squares(sh.exp, arena) + 1.0) / (s * s)
        if eps:
            uniform = uniform_loss(sh, w, w_total, arena)
            main = keep[0] * main + (share[0] * uniform + (keep[1] * main + share[1] * uniform))
            main[np.isnan(main)] = np.inf  # inf - inf from the low parts of an infinite loss
        loss[start:stop] = main

    blockrunner.run(blockrunner.plan(n, k), work, k)
    if w is not None or eps or t is not None or temperature != 1.0:
        _redo_overflowed_rows(loss, y, lab, t, w, eps, temperature)
    done = _finish(loss, label_q, predicted, lab, t, w, counted, ignore_index)
    if not facts:
        return done
    return dataclasses.replace(
        done, label_rank=rank, max_probability=top_q, sum_squared_probabilities=squares
    )


def _finish(
    loss: FloatArray,
    label_q: FloatArray,
    predicted: IntArray,
    lab: IntArray,
    t: FloatArray | None,
    w: FloatArray | None,
    counted: npt.NDArray[np.bool_],
    ignore_index: int | None,
    loss_lo: FloatArray | None = None,
    loss_err: FloatArray | None = None,
) -> RowLosses:
    """The :class:`RowLosses` of the computed rows: weights, ignored rows zeroed."""
    n = loss.size
    if t is not None:
        return RowLosses(loss, np.ones(n), predicted, label_q, counted, loss_lo, loss_err)
    row_w = np.ones(n) if w is None else w[lab]
    if ignore_index is not None:
        loss = np.where(counted, loss, 0.0)
        row_w = np.where(counted, row_w, 0.0)
        label_q = np.where(counted, label_q, np.nan)
        if loss_lo is not None and loss_err is not None:
            loss_lo = np.where(counted, loss_lo, 0.0)
            loss_err = np.where(counted, loss_err, 0.0)
    return RowLosses(loss, row_w, predicted, label_q, counted, loss_lo, loss_err)


def _redo_overflowed_rows(
    loss: FloatArray,
    y: FloatArray,
    lab: IntArray,
    t: FloatArray | None,
    w: FloatArray | None,
    eps: float,
    temperature: float,
) -> None:
    """Recompute, exactly, infinite row losses whose true value may be finite.

    When ``y_c - m`` (or a sum of weighted terms) is beyond the float range, a weight, a
    target or a smoothing share below 1 can bring the loss back within it. Such rows
    (logits near the float limits) are redone with rationals, one by one; rows that are
    infinite because of a masked class (-inf) are left alone unless a difference
    overflowed too.
    """
    candidates = np.flatnonzero(loss == np.inf)
    if candidates.size == 0:
        return
    rows = y[candidates]
    with np.errstate(over="ignore", invalid="ignore"):
        spread = rows - rows.max(axis=1, keepdims=True)
    overflowed = (np.isfinite(rows) & np.isinf(spread)).any(axis=1)
    overflowed |= ~np.isinf(rows).any(axis=1)
    for i in candidates[overflowed].tolist():
        log_s = float(softmax_steps(y[i], temperature=temperature).log_sum_exp_shifted)
        loss[i] = exact_row_loss(
            y[i], log_s, int(lab[i]), None if t is None else t[i], w, eps, temperature
        )


def cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    targets: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    reduction: Reduction = "mean",
    base: Base | str = "e",
    check: bool = True,
    exact: bool = False,
    scores: ScoreKind = "logits",
    sum_tolerance: float | None = None,
    renormalize: bool = False,
    clip: float | None = None,
) -> FloatArray | float:
    """Cross-entropy loss of logits against class labels or soft targets.

    Follows ``torch.nn.functional.cross_entropy``: the weighted mean divides by the sum
    of the counted rows' weights; soft targets' mean divides by N (not by the weights).

    Parameters
    ----------
    logits : array_like
        ``(N, K)`` or ``(K,)`` float logits; ``-inf`` masks a class.
    labels : array_like of int, optional
        ``(N,)`` class indices (or one int for a single row).
    targets : array_like, optional
        ``(N, K)`` probability rows instead of labels (each sums to 1 within
        :data:`TARGET_SUM_TOLERANCE`).
    weights : array_like, optional
        ``(K,)`` non-negative class weights.
    ignore_index : int, optional
        Rows with this label do not count.
    label_smoothing : float
        ``eps`` in [0, 1]: the target becomes ``(1 - eps) * onehot + eps / K``.
    temperature : float
        Divide the logits by this positive number first.
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns the per-row losses.
    base : {"e", "2", "10"}
        Units: nats, bits or bans.
    check : bool
        ``False`` skips validating logits, labels and targets (already validated).
    exact : bool
        Correctly rounded: each row loss is the float64 nearest its exact value, and the
        mean (or sum) the float64 nearest the exact mean of the exact row losses; the
        same bits on every machine. Slower (docs/accuracy.md has the figures).
    scores : {"logits", "probs", "logprobs"}
        What the first argument holds. Probabilities: each in [0, 1], each row summing
        to 1 within *sum_tolerance*; the loss is ``-log p`` of the given float (within
        1 ulp), ``inf`` for a probability of 0. Log-probabilities: each <= 0, each
        row's log-sum-exp within *sum_tolerance* of 0; the loss is ``-log p`` as given.
    sum_tolerance : float, optional
        How far a row's total may be from 1 (its log-sum-exp from 0), for the scores
        and for soft targets; default :func:`~xentcli.core.default_sum_tolerance`:
        ``min(1e-2, max(1e-5, 5e-5 * K))``.
    renormalize : bool
        Divide each row of probabilities by its sum (subtract the log-sum-exp of
        log-probabilities) instead of requiring a total of 1.
    clip : float, optional
        Clip probabilities to ``[clip, 1 - clip]`` first, as scikit-learn's
        ``log_loss`` (float64 eps, at most 36.04 nats) and Keras (1e-7, at most 16.12
        nats) do; for comparison only.

    Returns
    -------
    float or numpy.ndarray
        The mean or sum (rounded once from the exact sum), or the per-row losses.

    Raises
    ------
    xentcli.errors.InvalidInputError
        For invalid input, naming the row and column.
    xentcli.errors.UndefinedMeanError
        For a mean when no row counts.

    Examples
    --------
    >>> cross_entropy([1.2, 2.3, 0.8], 1)
    0.4421192251430...
    >>> cross_entropy([0.0, -40.0], 0)
    4.248354255291589e-18
    >>> cross_entropy([[0.0, 0.0], [0.0, -np.inf]], [0, 0], reduction="none")
    array([0.69314718, 0.        ])
    >>> cross_entropy([[0.0, 0.0]], [0], base="2")
    1.0
    >>> cross_entropy([[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]], [1, 2], scores="probs")
    0.6364828379064438
    """
    if reduction not in ("mean", "sum", "none"):
        raise InvalidInputError("reduction must be 'mean', 'sum' or 'none'", value=reduction)
    check_base(base)
    one_row = np.ndim(logits) == 1
    rows = row_losses(
        logits,
        labels,
        targets=targets,
        weights=weights,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        temperature=temperature,
        check=check,
        exact=exact,
        scores=scores,
        sum_tolerance=sum_tolerance,
        renormalize=renormalize,
        clip=clip,
        target_tolerance=sum_tolerance,
    )
    if exact:
        return _exact_reduce(
            rows, reduction, str(base), logits, labels, targets, weights,
            label_smoothing, temperature, scores, clip, renormalize,
        )  # fmt: skip
    if reduction == "none":
        out = to_base(rows.loss, base)
        return out[0] if one_row else out  # type: ignore[index]
    denominator = None
    if reduction == "mean":
        denominator = ExactSum()
        if weights is None:  # every counted row weighs 1: count them, not sum them
            denominator.add_ones(int(np.count_nonzero(rows.counted)))
        else:
            denominator.add(rows.weight)
    total = ExactSum()
    total.add(rows.loss)
    if denominator is None:
        return total.value(base)
    return total.ratio(denominator, base)


def _exact_reduce(
    rows: RowLosses,
    reduction: str,
    base: str,
    logits: ArrayLike,
    labels: ArrayLike | None,
    targets: ArrayLike | None,
    weights: ArrayLike | None,
    label_smoothing: float,
    temperature: float,
    scores: ScoreKind,
    clip: float | None,
    renormalize: bool,
) -> FloatArray | float:
    """The exact branch of :func:`cross_entropy`: the reduction of the correctly rounded
    rows, with each row's decimal slow path at hand for the rare undecided figure."""
    from xentcli.core import _exact_given, _exact_kernel

    y = logits_array(logits)
    if scores == "logits" or _exact_given.as_logits(scores, temperature, renormalize, clip):
        intervals = _exact_kernel.logit_intervals(
            y, labels, targets, weights, label_smoothing, temperature
        )
    else:
        y2 = y[None, :] if y.ndim == 1 else y
        n, k = y2.shape
        intervals = _exact_given.row_intervals(
            y2,
            _exact_given.Given(scores, clip, renormalize),
            None if labels is None else np.asarray(labels, dtype=np.int64).reshape(n),
            None if targets is None else np.asarray(targets, dtype=np.float64).reshape(n, k),
            None if weights is None else np.asarray(weights, dtype=np.float64),
            label_smoothing,
        )
    return _exact_kernel.reduce(rows, reduction, base, y.ndim == 1, intervals)
