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

Rows are processed in blocks (about 512 KB of float64), transposed to ``(K, rows)`` so
that every reduction over the classes is a contiguous, vectorized operation and the
temporaries stay in cache; big batches use two threads (numpy releases the GIL; the
environment variable XENT_THREADS sets another count, 1 for none).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from xentcli.errors import InvalidInputError, UndefinedMeanError

if TYPE_CHECKING:
    from concurrent.futures import Executor

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Reduction = Literal["mean", "sum", "none"]
Base = Literal["e", "2", "10"]

UNITS = {"e": "nats", "2": "bits", "10": "bans"}

#: Soft targets must sum to 1 within this absolute tolerance (reader.py uses the same).
TARGET_SUM_TOLERANCE = 1e-6

#: 1/ln(b) as a double-double (hi, lo): nats -> bits / bans is one multiplication.
_LOG_E_IN_BASE = {
    "2": (1.4426950408889634, 2.0355273740931033e-17),
    "10": (0.4342944819032518, 1.098319650216765e-17),
}

#: Elements (K * rows) per block: a few hundred KB per temporary, so they stay in cache.
_BLOCK_ELEMENTS = 1 << 16
#: Use a second thread for batches at least this large (numpy releases the GIL).
_THREAD_ELEMENTS = 1 << 20
_THREADS = max(1, int(os.environ.get("XENT_THREADS", "0")) or min(2, os.cpu_count() or 1))

_SPLITTER = 134217729.0  # 2**27 + 1, Veltkamp's splitting constant
_SPLIT_SAFE = 2.0**995  # above this, a * _SPLITTER may overflow


# ------------------------------------------------------------ error-free transformations
def _two_sum(a: FloatArray, b: FloatArray | float) -> tuple[FloatArray, FloatArray]:
    """``a + b = s + e`` exactly (Knuth's TwoSum, no ordering assumption)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def _split_scalar(x: float) -> tuple[float, float]:
    c = _SPLITTER * x
    hi = c - (c - x)
    return hi, x - hi


def _two_prod(a: FloatArray, b: FloatArray | float) -> tuple[FloatArray, FloatArray]:
    """``a * b = p + e`` exactly (Dekker), e = 0 where p is not finite.

    Operands too large to split are scaled by a power of two first (exact).
    """
    with np.errstate(all="ignore"):
        return _two_prod_raw(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


def _two_prod_raw(a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
    p = a * b
    fa = np.where(np.abs(a) > _SPLIT_SAFE, 2.0**-200, 1.0)
    fb = np.where(np.abs(b) > _SPLIT_SAFE, 2.0**-200, 1.0)
    sa, sb = a * fa, b * fb
    ps = sa * sb
    ca = _SPLITTER * sa
    ah = ca - (ca - sa)
    al = sa - ah
    cb = _SPLITTER * sb
    bh = cb - (cb - sb)
    bl = sb - bh
    e = (((ah * bh - ps) + ah * bl) + al * bh) + al * bl
    e = e / (fa * fb)
    e = np.where(np.isfinite(p) & np.isfinite(e), e, 0.0)
    return p, e


def _divide_dd(hi: FloatArray, lo: FloatArray, t: float) -> tuple[FloatArray, FloatArray]:
    """``(hi + lo) / t`` as a new ``(hi, lo)`` pair, the remainder computed exactly."""
    q = hi / t
    if not 2.0**-900 < t < 2.0**900:
        p, e = _two_prod(q, t)
    else:
        # Dekker's product with the split of t done once; values too large to split
        # (or -inf) are redone apart.
        t_hi, t_lo = _split_scalar(t)
        p = q * t
        with np.errstate(invalid="ignore", over="ignore"):
            c = _SPLITTER * q
            q_hi = c - (c - q)
            q_lo = q - q_hi
            e = ((q_hi * t_hi - p) + q_hi * t_lo + q_lo * t_hi) + q_lo * t_lo
        big = np.abs(q) > _SPLIT_SAFE
        if big.any():
            p[big], e[big] = _two_prod(q[big], t)
    rem = ((hi - p) - e) + lo  # hi - q*t is exact; lo is added to a number of its size
    return q, rem / t


class _Arena:
    """Per-thread scratch memory for one block's temporaries, reused block after block.

    Fresh 512 KB temporaries for every block make glibc trim and re-fault its heap (600
    page faults per block, measured: the TwoSum took 4x longer than in a loop); carving
    them from one buffer avoids that. :meth:`reset` at the start of each block.
    """

    def __init__(self) -> None:
        self.buffer = np.empty(0)
        self.used = 0

    def reset(self, elements: int) -> None:
        if self.buffer.size < elements:
            self.buffer = np.empty(elements)
        self.used = 0

    def take(self, shape: tuple[int, ...]) -> FloatArray:
        size = math.prod(shape)
        if self.used + size > self.buffer.size:
            return np.empty(shape)  # beyond the planned temporaries: allocate
        out = self.buffer[self.used : self.used + size].reshape(shape)
        self.used += size
        return out


_ARENA_BLOCKS = 12  # block-sized temporaries: shift 4 + sums 3, targets 2 + sums 3
_local = threading.local()


_ARENA_KEPT = 1 << 21  # elements (16 MB): a thread keeps an arena up to this size


def _arena(elements: int) -> _Arena:
    """This thread's arena, reset for a block needing *elements*; a fresh one if huge."""
    kept: _Arena | None = getattr(_local, "arena", None)
    if elements > _ARENA_KEPT:  # a single row of millions of classes: do not hoard it
        arena = _Arena()
    elif kept is None:
        arena = _local.arena = _Arena()
    else:
        arena = kept
    arena.reset(elements)
    return arena


def _sum0(x: FloatArray, arena: _Arena | None = None) -> tuple[FloatArray, FloatArray]:
    """Sum along axis 0 as ``(hi, lo)``: a pairwise tree of TwoSums, errors collected.

    The result ``hi + lo`` is within about ``K * 2**-106`` (relative to the sum of
    magnitudes) of the exact sum; ``hi`` alone is within about an ulp.
    """
    k = x.shape[0]
    err = np.zeros(x.shape[1:])
    if k == 0:
        return err.copy(), err
    cur = x
    while k > 1:
        h = k // 2
        a = cur[:h]
        b = cur[h : 2 * h]
        shape = (h, *x.shape[1:])
        s, bb, t = (np.empty(shape) if arena is None else arena.take(shape) for _ in "sbt")
        np.add(a, b, out=s)
        np.subtract(s, a, out=bb)
        np.subtract(s, bb, out=t)
        np.subtract(a, t, out=t)
        np.subtract(b, bb, out=bb)
        t += bb
        err += t[0] if h == 1 else t.sum(axis=0)
        if k % 2:
            s0, e0 = _two_sum(s[0], cur[2 * h])
            s[0] = s0
            err += e0
        cur = s
        k = h
    return np.array(cur[0], dtype=np.float64), err


# --------------------------------------------------------------------------- validation
def as_logits(logits: ArrayLike, temperature: float = 1.0) -> FloatArray:
    """Validate logits and return them as float64 (divided by *temperature*).

    The division by a temperature other than 1 is rounded; the kernel itself never uses
    these rounded values (it divides the exact shifted logits instead).

    >>> as_logits([1, 2, 4], temperature=2.0)
    array([0.5, 1. , 2. ])
    """
    _check_temperature(temperature)
    array = _logits_array(logits)
    _check_logit_values(array if array.ndim == 2 else array[None, :], 0)
    if array.ndim == 2:
        _check_masked_rows(np.max(array, axis=-1), 0)
    elif np.max(array) == -np.inf:
        raise InvalidInputError("every logit of the row is -inf", field="logit")
    if temperature != 1.0:
        array = array / temperature
    return array


def _logits_array(logits: ArrayLike) -> FloatArray:
    array = np.asarray(logits, dtype=np.float64)
    if array.ndim not in (1, 2):
        raise InvalidInputError(f"logits must be 1-D or 2-D, got {array.ndim}-D")
    if array.shape[-1] == 0:
        raise InvalidInputError("logits: a row is empty (no classes)")
    if array.ndim == 2 and array.shape[0] == 0:
        raise InvalidInputError("logits: the batch is empty (no rows)")
    return array


def _check_temperature(temperature: float) -> None:
    if not (isinstance(temperature, (int, float, np.floating, np.integer))
            and math.isfinite(temperature) and temperature > 0):
        raise InvalidInputError("temperature must be a positive finite number", value=temperature)


def _check_logit_values(rows: FloatArray, row0: int, *, transposed: bool = False) -> None:
    """Raise for NaN or +inf in *rows* (``(n, K)``, or ``(K, n)`` when transposed)."""
    ok = rows < np.inf  # False for NaN and +inf
    if ok.all():
        return
    bad = np.argwhere(~ok)
    if transposed:
        bad = bad[:, ::-1]
    r, c = (int(v) for v in bad[np.lexsort((bad[:, 1], bad[:, 0]))[0]])
    value = float(rows[c, r] if transposed else rows[r, c])
    raise InvalidInputError(
        "logit is NaN" if math.isnan(value) else "logit is +inf",
        row=row0 + r, column=c, value=value, field="logit",
    )


def _check_masked_rows(m: FloatArray, row0: int, one_row: bool = False) -> None:
    masked = m == -np.inf
    if masked.any():
        row = None if one_row else row0 + int(np.argmax(masked))
        raise InvalidInputError("every logit of the row is -inf", row=row, field="logit")


def _check_weights(weights: ArrayLike | None, k: int) -> FloatArray | None:
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (k,):
        raise InvalidInputError(f"weights: expected {k} values (one per class), got shape"
                                f" {w.shape}", field="weight")
    bad = ~((w >= 0) & (w < np.inf))
    if bad.any():
        col = int(np.argmax(bad))
        raise InvalidInputError("weight must be finite and >= 0", column=col,
                                value=float(w[col]), field="weight")
    return w


def _check_smoothing(label_smoothing: float) -> float:
    eps = float(label_smoothing)
    if not (0.0 <= eps < 1.0):
        raise InvalidInputError("label_smoothing must be in [0, 1)", value=label_smoothing)
    return eps


def _validate_labels(labels: ArrayLike, n: int, k: int, ignore_index: int | None,
                     check: bool = True) -> IntArray:
    raw = np.asarray(labels)
    if raw.ndim == 0:
        raw = raw.reshape(1)
    if raw.ndim != 1 or raw.shape[0] != n:
        raise InvalidInputError(f"labels: expected {n} labels, got shape {raw.shape}",
                                field="label")
    if not check:
        return raw.astype(np.int64, copy=False)
    if raw.dtype.kind == "f":
        nonint = ~np.isfinite(raw) | (raw != np.round(raw))
        if nonint.any():
            row = int(np.argmax(nonint))
            raise InvalidInputError("label is not an integer", row=row, value=float(raw[row]),
                                    field="label")
        if raw.size and np.abs(raw).max() >= 2.0**62:
            row = int(np.argmax(np.abs(raw) >= 2.0**62))
            raise InvalidInputError(f"label out of range [0, {k})", row=row,
                                    value=float(raw[row]), field="label")
    elif raw.dtype.kind not in "iub":
        raise InvalidInputError(f"labels must be integers, got dtype {raw.dtype}",
                                field="label")
    out = raw.astype(np.int64)
    valid = (out >= 0) & (out < k)
    if ignore_index is not None:
        valid |= out == ignore_index
    if not valid.all():
        row = int(np.argmax(~valid))
        raise InvalidInputError(f"label out of range [0, {k})", row=row, value=int(out[row]),
                                field="label")
    return out


def _check_targets(tt: FloatArray, row0: int) -> None:
    """Validate a transposed ``(K, n)`` block of soft targets."""
    ok = (tt >= 0) & (tt < np.inf)
    if not ok.all():
        bad = np.argwhere(~ok)[:, ::-1]
        r, c = (int(v) for v in bad[np.lexsort((bad[:, 1], bad[:, 0]))[0]])
        raise InvalidInputError("target must be a finite probability >= 0", row=row0 + r,
                                column=c, value=float(tt[c, r]), field="target")
    sums = tt.sum(axis=0)
    off = np.abs(sums - 1.0) > TARGET_SUM_TOLERANCE
    if off.any():
        r = int(np.argmax(off))
        raise InvalidInputError(
            f"targets do not sum to 1 (tolerance {TARGET_SUM_TOLERANCE:g})",
            row=row0 + r, value=float(sums[r]), field="target",
        )


# ----------------------------------------------------------------------- the core block
class _Shift(NamedTuple):
    """The stable softmax of a transposed block ``(K, b)`` of logits."""

    argmax: npt.NDArray[np.intp]  #: (b,) first index of the max
    max: FloatArray  #: (b,) the max of the raw logits
    hi: FloatArray  #: (K, b) (y - m) / T rounded
    lo: FloatArray  #: (K, b) its exact remainder (0 where hi is -inf)
    exp: FloatArray  #: (K, b) exp(hi); 0 at the argmax (its true value is exactly 1)
    s_hi: FloatArray  #: (b,) s = 1 + sum over k != argmax of exp(hi + lo) ...
    s_lo: FloatArray  #: (b,) ... as s_hi + s_lo (s_hi rounded, s_lo its remainder)
    log_s: FloatArray  #: (b,) log s


_COLUMN_INDEX = np.arange(127, dtype=np.int8)[:, None]


def _argmax0(x: FloatArray) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """First index of the max along axis 0 of a contiguous ``(K, b)`` block, and the max.

    numpy's argmax along a non-contiguous axis copies and loops per row, slow for small K;
    measured on this kind of block, the variants below are 2-4x faster where used.
    """
    k, b = x.shape
    if k == 1:
        return np.zeros(b, dtype=np.intp), x[0].copy()
    if b == 1 or k > _COLUMN_INDEX.shape[0]:
        am = np.argmax(x, axis=0)
        return am, np.take(x, am * b + np.arange(b))
    if k == 2:
        am = (x[1] > x[0]).astype(np.intp)
        return am, np.maximum(x[0], x[1])
    m = x.max(axis=0)
    # The smallest index where the max is reached; int8 keeps the passes light.
    first = np.where(x == m, _COLUMN_INDEX[:k], np.int8(k)).min(axis=0)
    return first.astype(np.intp), m


def _flat(index: npt.NDArray[np.integer], b: int) -> npt.NDArray[np.intp]:
    """Flat positions of ``(index[j], j)`` in a C-contiguous ``(K, b)`` block."""
    return index * b + np.arange(b)


def _transposed(rows: FloatArray, arena: _Arena) -> FloatArray:
    """A contiguous ``(K, b)`` copy of the ``(b, K)`` rows, in the arena."""
    out = arena.take(rows.shape[::-1])
    np.copyto(out, rows.T)
    return out


def _shift(xt: FloatArray, temperature: float, arena: _Arena | None = None) -> _Shift:
    """The shift, exponentials and ``log s`` of a transposed block (rows are columns).

    *xt* is overwritten (it becomes the ``lo`` part of the shift).
    """
    if arena is None:
        arena = _Arena()
    am, m = _argmax0(xt)
    hi, bb, e = (arena.take(xt.shape) for _ in "hbe")
    # TwoSum(y, -m): lo = (y - (hi - bb)) + (-m - bb), with bb = hi - y; e is scratch.
    np.subtract(xt, m, out=hi)
    halved = None
    if temperature != 1.0 and np.isinf(hi).any():
        # y - m beyond the float range, yet (y - m) / T may be within it: take it as
        # (y/2 - m/2) / (T/2), exact (both are >= 2**970 in magnitude when this happens).
        where = np.isinf(hi) & (xt > -np.inf)
        if where.any():
            pos = np.nonzero(where)
            halved = pos, _two_sum(xt[pos] * 0.5, -0.5 * m[pos[1]])
    np.subtract(hi, xt, out=bb)
    np.subtract(hi, bb, out=e)
    lo = np.subtract(xt, e, out=xt)
    np.add(bb, m, out=bb)
    np.subtract(lo, bb, out=lo)
    if temperature != 1.0:
        hi, lo = _divide_dd(hi, lo, temperature)
        if halved is not None:
            pos, (h2, l2) = halved
            hi[pos], lo[pos] = _divide_dd(h2, l2, temperature * 0.5)
    np.exp(hi, out=e)
    e.ravel()[_flat(am, e.shape[1])] = 0.0
    correction = np.einsum("kb,kb->b", e, lo)
    if np.isnan(correction).any():
        # A masked class (-inf) or a difference beyond the float range: exp is exactly 0
        # and its remainder is meaningless.
        np.copyto(lo, 0.0, where=np.isinf(hi))
        correction = np.einsum("kb,kb->b", e, lo)
    if e.shape[0] == 2:  # one term besides the max: nothing to round
        rest_hi, rest_lo = e[0] + e[1], correction
    else:
        rest_hi, rest_lo = _sum0(e, arena)
        rest_lo += correction
    s_hi, s_lo = _two_sum(np.ones_like(rest_hi), rest_hi)
    s_lo += rest_lo
    # log s = log(s_hi) + log1p(z), |z| <= 2**-53: np.log is within 0.51 ulp here (log1p
    # measured 0.75 ulp, and is 2x slower); when s_hi == 1, z is all of s - 1 and its
    # second-order term keeps tiny losses exact.
    z = s_lo / s_hi
    log_s = np.log(s_hi) + (z - 0.5 * z * z)
    return _Shift(am, m, hi, lo, e, s_hi, s_lo, log_s)


def _probabilities(e: FloatArray, lo: FloatArray, s_hi: FloatArray,
                   s_lo: FloatArray) -> FloatArray:
    """``exp(hi + lo) / (s_hi + s_lo)`` from ``e = exp(hi)``, rounded about once."""
    q = e / s_hi
    q += q * (lo - s_lo / s_hi)
    return q


def _blocks(n: int, k: int) -> list[tuple[int, int]]:
    step = max(1, _BLOCK_ELEMENTS // k)
    return [(start, min(n, start + step)) for start in range(0, n, step)]


def _run(blocks: list[tuple[int, int]], work: Callable[[int, int], None], k: int) -> None:
    """Run *work(start, stop)* over the blocks, on two threads for big batches."""
    total = (blocks[-1][1] if blocks else 0) * k
    if _THREADS < 2 or total < _THREAD_ELEMENTS or len(blocks) < 4:
        _run_list(blocks, work)
        return
    # This thread and the workers take every other block; results land in disjoint
    # slices. The workers persist, so their arenas are reused from call to call.
    pool = _pool()
    futures = [pool.submit(_run_list, blocks[i::_THREADS], work, True)
               for i in range(1, _THREADS)]
    outcomes = [_run_list(blocks[0::_THREADS], work, True)]
    outcomes += [future.result() for future in futures]
    failures = [f for f in outcomes if f is not None]
    if failures:
        # Each thread stops at its first bad block: the earliest of those is the first.
        raise min(failures, key=lambda failure: failure[0])[1]


_POOL: dict[int, Executor] = {}  # the worker threads, by process id, created on first use


def _pool() -> Executor:
    pid = os.getpid()  # a forked child inherits the pool object but not its threads
    if pid not in _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.clear()
        _POOL[pid] = ThreadPoolExecutor(_THREADS - 1, thread_name_prefix="xent-kernel")
    return _POOL[pid]


def _run_list(blocks: list[tuple[int, int]], work: Callable[[int, int], None],
              catch: bool = False) -> tuple[int, Exception] | None:
    # inf - inf and 0 * inf arise by design at masked classes and are repaired after.
    with np.errstate(all="ignore"):
        for start, stop in blocks:
            try:
                work(start, stop)
            except InvalidInputError as error:
                if not catch:
                    raise
                return start, error
    return None


# ---------------------------------------------------------------------- softmax steps
class SoftmaxSteps(NamedTuple):
    """The intermediate values of the stable softmax of one row or a batch of rows.

    With a temperature T the logits are ``y / T``: ``max`` is ``max(y) / T`` (rounded)
    and ``shifted`` is ``(y - max(y)) / T`` rounded once, with its exact remainder in
    ``shifted_lo``.
    """

    max: FloatArray               #: m = max_j y_j, shape (N,) or ()
    argmax: IntArray              #: first index of the max
    shifted: FloatArray           #: y - m (<= 0), rounded
    exp_shifted: FloatArray       #: exp(y - m)
    sum_exp_shifted: FloatArray   #: s = sum_k exp(y_k - m) >= 1
    log_sum_exp_shifted: FloatArray  #: log s (to full relative precision when s ~ 1)
    log_sum_exp: FloatArray       #: m + log s
    probabilities: FloatArray     #: q = exp(y - m) / s
    log_probabilities: FloatArray  #: (y - m) - log s
    shifted_lo: FloatArray        #: exact remainder: y - m = shifted + shifted_lo


def softmax_steps(logits: ArrayLike, *, temperature: float = 1.0) -> SoftmaxSteps:
    """Every intermediate value of the stable softmax, for one row or a batch.

    Parameters
    ----------
    logits : array_like
        Shape ``(K,)`` or ``(N, K)``; finite floats or ``-inf`` (a masked class).
    temperature : float
        The logits are divided by it (exactly: the shifted logits are divided).

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
    return _softmax_parts(logits, temperature, _ALL_PARTS)  # type: ignore[return-value]


_ALL_PARTS = frozenset(("hi", "lo", "e", "q", "lq", "m", "s", "log_s", "lse"))


def _softmax_parts(logits: ArrayLike, temperature: float,
                   parts: frozenset[str]) -> SoftmaxSteps | npt.NDArray[np.float64]:
    """The requested parts only (one part: that array; all: a SoftmaxSteps)."""
    _check_temperature(temperature)
    array = _logits_array(logits)
    one_row = array.ndim == 1
    y = array[None, :] if one_row else array
    n, k = y.shape
    out: dict[str, FloatArray] = {
        name: np.empty((n, k)) for name in ("hi", "lo", "e", "q", "lq") if name in parts
    }
    per_row: dict[str, FloatArray] = {
        name: np.empty(n) for name in ("m", "s", "log_s", "lse") if name in parts
    }
    argmax = np.empty(n, dtype=np.int64)

    def work(start: int, stop: int) -> None:
        arena = _arena(_ARENA_BLOCKS * (stop - start) * k)
        xt = _transposed(y[start:stop], arena)
        _check_logit_values(xt, start, transposed=True)
        sh = _shift(xt, temperature, arena)
        _check_masked_rows(sh.max, start, one_row)
        argmax[start:stop] = sh.argmax
        e = sh.exp
        e.ravel()[_flat(sh.argmax, stop - start)] = 1.0
        rows = slice(start, stop)
        if "hi" in out:
            out["hi"][rows] = sh.hi.T
            out["lo"][rows] = sh.lo.T
            out["e"][rows] = (e + e * sh.lo).T
        if "q" in out:
            out["q"][rows] = _probabilities(e, sh.lo, sh.s_hi, sh.s_lo).T
        if "lq" in out:
            out["lq"][rows] = (sh.hi + (sh.lo - sh.log_s)).T
        if not per_row:
            return
        m_hi, m_lo = sh.max, np.zeros_like(sh.max)
        if temperature != 1.0:
            m_hi, m_lo = _divide_dd(sh.max, np.zeros_like(sh.max), temperature)
            m_lo[~np.isfinite(m_hi)] = 0.0  # max / T beyond the float range
        per_row["lse"][rows] = m_hi + (m_lo + sh.log_s)
        if "m" in per_row:
            per_row["m"][rows] = m_hi
            per_row["s"][rows] = sh.s_hi + sh.s_lo
            per_row["log_s"][rows] = sh.log_s

    _run(_blocks(n, k), work, k)

    def shape(a: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        return a[0] if one_row else a

    if len(parts) == 1:
        (name,) = parts
        found = {**out, **per_row}
        return shape(found[name])  # type: ignore[return-value]
    return SoftmaxSteps(
        max=shape(per_row["m"]), argmax=shape(argmax),  # type: ignore[arg-type]
        shifted=shape(out["hi"]), exp_shifted=shape(out["e"]),  # type: ignore[arg-type]
        sum_exp_shifted=shape(per_row["s"]),  # type: ignore[arg-type]
        log_sum_exp_shifted=shape(per_row["log_s"]),  # type: ignore[arg-type]
        log_sum_exp=shape(per_row["lse"]),  # type: ignore[arg-type]
        probabilities=shape(out["q"]),  # type: ignore[arg-type]
        log_probabilities=shape(out["lq"]),  # type: ignore[arg-type]
        shifted_lo=shape(out["lo"]),  # type: ignore[arg-type]
    )


def softmax(logits: ArrayLike, *, temperature: float = 1.0) -> FloatArray:
    """Softmax along the last axis, shifted by the max so that it never overflows.

    Parameters
    ----------
    logits : array_like
        Shape ``(K,)`` or ``(N, K)``; ``-inf`` marks a masked class (probability 0).
    temperature : float
        Divide the logits by this positive number first.

    Returns
    -------
    numpy.ndarray
        Probabilities, each within 3 ulp of the exact value.

    Examples
    --------
    >>> softmax([1.2, 2.3, 0.8]).round(6)
    array([0.213927, 0.642673, 0.1434  ])
    >>> softmax([[1000.0, 1000.0, -np.inf]])
    array([[0.5, 0.5, 0. ]])
    """
    return _softmax_parts(logits, temperature, frozenset(("q",)))  # type: ignore[return-value]


def log_softmax(logits: ArrayLike, *, temperature: float = 1.0) -> FloatArray:
    """Log-softmax along the last axis: ``(y - max) - log sum exp(y - max)``.

    Parameters
    ----------
    logits : array_like
        Shape ``(K,)`` or ``(N, K)``.
    temperature : float
        Divide the logits by this positive number first.

    Returns
    -------
    numpy.ndarray
        ``log q``, each within about 2 ulp of the exact value.

    Examples
    --------
    >>> log_softmax([0.0, -40.0])
    array([-4.24835426e-18, -4.00000000e+01])
    """
    return _softmax_parts(logits, temperature, frozenset(("lq",)))  # type: ignore[return-value]


def logsumexp(logits: ArrayLike, *, temperature: float = 1.0) -> FloatArray:
    """``log sum_k exp(y_k)`` along the last axis, without overflow.

    Parameters
    ----------
    logits : array_like
        Shape ``(K,)`` or ``(N, K)``.
    temperature : float
        Divide the logits by this positive number first.

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
    return _softmax_parts(logits, temperature, frozenset(("lse",)))  # type: ignore[return-value]


# ------------------------------------------------------------------------- exact sums
_SCALE_BITS = 1126  # values are held as an integer times 2**-1126 (53 bits below 2**-1074)
_EXACT_CHUNK = 1 << 16  # values per pass: temporaries stay in cache
_BINS = 2098  # frexp exponents -1073 .. 1024


def _exact_int(values: FloatArray) -> int:
    """The exact sum of finite float64 *values*, as an integer multiple of 2**-1126.

    Each value is split by its binary exponent into an integer mantissa (53 bits) cut in
    two halves (26 and 27 bits); per exponent, the halves are summed by ``np.bincount``,
    exactly (a chunk's sums stay below 2**53), then accumulated in int64 (exact below
    2**36 values per call, far beyond any array) and finally in a Python int.
    """
    acc_high = np.zeros(_BINS, dtype=np.int64)
    acc_low = np.zeros(_BINS, dtype=np.int64)
    for start in range(0, values.size, _EXACT_CHUNK):
        v = values[start : start + _EXACT_CHUNK]
        mant, expo = np.frexp(v)  # v = mant * 2**expo, 0.5 <= |mant| < 1 (or 0)
        whole = mant * 2.0**53  # an integer, |whole| < 2**53
        high = np.trunc(whole * 2.0**-27)  # |high| < 2**26
        whole -= high * 2.0**27  # the low half: |low| < 2**27, same sign
        expo += 1073  # 2**-1074 = 0.5 * 2**-1073 -> bin 0
        acc_high += np.bincount(expo, weights=high, minlength=_BINS).astype(np.int64)
        acc_low += np.bincount(expo, weights=whole, minlength=_BINS).astype(np.int64)
    total = 0
    present = np.flatnonzero((acc_high != 0) | (acc_low != 0))
    for i, h, lo in zip(present.tolist(), acc_high[present].tolist(),
                        acc_low[present].tolist(), strict=True):
        # value = (h * 2**27 + lo) * 2**(expo - 53) = (...) * 2**(i - 1126)
        total += ((h << 27) + lo) << i
    return total


def _to_float(numerator: int, denominator: int) -> float:
    """``numerator / denominator`` correctly rounded (Python's int division is)."""
    try:
        return numerator / denominator
    except OverflowError:
        return math.inf if (numerator > 0) == (denominator > 0) else -math.inf


class ExactSum:
    """An exact, order-independent accumulator of float64 values.

    The sum is held exactly (an integer multiple of 2**-1126), so the result is the same
    bits whatever order or chunking the values arrive in; :meth:`value` rounds once.
    Infinities are summed apart: inf stays inf, inf + -inf is nan.

    Examples
    --------
    >>> acc = ExactSum(); acc.add(np.array([1e100, 1.0, -1e100])); acc.value()
    1.0
    >>> a, b = ExactSum(), ExactSum()
    >>> a.add([0.1] * 10); b.add([3.0]); a.ratio(b)
    0.33333333333333337
    >>> a.merge(b); a.value(), a.count
    (4.0, 11)
    """

    def __init__(self) -> None:
        self._total = 0  # exact sum of the finite values, times 2**1126
        self._special = 0.0  # sum of the non-finite values (0, inf, -inf or nan)
        self.count = 0

    def add(self, values: ArrayLike) -> None:
        """Add every value of *values* (any shape; flattened)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        self.count += v.size
        finite = np.isfinite(v)
        if not finite.all():
            for x in v[~finite].tolist():
                self._special += x
            v = v[finite]
        if v.size:
            self._total += _exact_int(v)

    def merge(self, other: ExactSum) -> None:
        """Add everything *other* holds."""
        self._total += other._total
        self._special += other._special
        self.count += other.count

    def exact(self) -> Fraction:
        """The exact sum of the finite values added."""
        return Fraction(self._total, 1 << _SCALE_BITS)

    def _nonfinite(self) -> bool:
        return self._special != 0.0 or math.isnan(self._special)

    def value(self, base: Base | str = "e") -> float:
        """The sum, rounded once (inf/nan if infinities were added).

        *base* ``"2"`` or ``"10"`` converts nats to bits or bans before the one rounding.
        """
        if self._nonfinite():
            return float(to_base(self._special, base))
        numerator, denominator = self._total, 1 << _SCALE_BITS
        if base != "e":
            numerator, denominator = _scaled(numerator, denominator, base)
        return _to_float(numerator, denominator)

    def ratio(self, denominator: ExactSum, base: Base | str = "e") -> float:
        """The correctly rounded quotient of this sum by *denominator*'s sum.

        *base* ``"2"`` or ``"10"`` converts nats to bits or bans before the one rounding.
        Raises :class:`~xentcli.errors.UndefinedMeanError` when *denominator* is 0.
        """
        if denominator._total == 0 and not denominator._nonfinite():
            raise UndefinedMeanError(
                "the mean loss is undefined: no row counts (every label is ignore_index"
                " or has weight 0)"
            )
        if self._nonfinite() or denominator._nonfinite():
            return float(to_base(self.value() / denominator.value(), base))
        numerator, den = self._total, denominator._total
        if base != "e":
            numerator, den = _scaled(numerator, den, base)
        return _to_float(numerator, den)

    def __repr__(self) -> str:
        return f"ExactSum(value={self.value()!r}, count={self.count})"


def fraction_to_base(value: Fraction, base: Base | str = "e") -> float:
    """An exact rational number of nats, in *base* units, rounded once.

    For callers that hold an exact mean as a :class:`~fractions.Fraction`: this gives the
    same bits as :meth:`ExactSum.ratio` (and :func:`cross_entropy`) in bits or bans.

    >>> fraction_to_base(Fraction(1, 3), "2")
    0.4808983469629878
    """
    numerator, denominator = value.numerator, value.denominator
    if base != "e":
        numerator, denominator = _scaled(numerator, denominator, base)
    return _to_float(numerator, denominator)


def _scaled(numerator: int, denominator: int, base: str) -> tuple[int, int]:
    if base not in _LOG_E_IN_BASE:
        raise InvalidInputError("base must be 'e', '2' or '10'", value=base)
    factor = sum((Fraction(c) for c in _LOG_E_IN_BASE[base]), Fraction(0))
    return numerator * factor.numerator, denominator * factor.denominator


# ------------------------------------------------------------------------ cross-entropy
@dataclass(frozen=True)
class RowLosses:
    """Per-row results of :func:`row_losses`; arrays of shape (N,)."""

    loss: FloatArray           #: the row's (weighted) loss in nats; 0 for ignored rows
    weight: FloatArray         #: its share of the mean's denominator; 0 for ignored rows
    predicted: IntArray        #: argmax of the logits (first index on ties)
    label_probability: FloatArray  #: q of the true class (nan with soft targets)
    counted: npt.NDArray[np.bool_]  #: False for rows whose label is ignore_index


def _dd_scalar(x: Fraction) -> tuple[float, float]:
    hi = float(x)
    return hi, float(x - Fraction(hi))


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
    """
    _check_temperature(temperature)
    eps = _check_smoothing(label_smoothing)
    array = _logits_array(logits)
    y = array[None, :] if array.ndim == 1 else array
    n, k = y.shape
    if (labels is None) == (targets is None):
        raise InvalidInputError("give exactly one of labels and targets")
    w = _check_weights(weights, k)
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
            raise InvalidInputError(f"targets: expected shape {(n, k)}, got {t.shape}",
                                    field="target")
    else:
        lab = _validate_labels(labels, n, k, ignore_index, check)  # type: ignore[arg-type]
        if ignore_index is not None:
            counted = lab != ignore_index
            lab = np.where(counted, lab, 0)

    loss = np.empty(n)
    label_q = np.full(n, np.nan)
    predicted = np.empty(n, dtype=np.int64)
    # (1 - eps) and eps / K as double-doubles: the smoothing weights are exact.
    keep = _dd_scalar(1 - Fraction(eps))
    share = _dd_scalar(Fraction(eps) / k)
    w_total = float(math.fsum(w.tolist())) if w is not None else float(k)

    def work(start: int, stop: int) -> None:
        arena = _arena(_ARENA_BLOCKS * (stop - start) * k)
        xt = _transposed(y[start:stop], arena)
        if check:
            _check_logit_values(xt, start, transposed=True)
        binary = _binary_rows(xt, lab[start:stop], w, temperature) \
            if k == 2 and t is None and not eps else None
        if binary is not None:
            # Binary rows: the same arithmetic on (b,) vectors, without the class-axis
            # machinery whose per-row bookkeeping costs more than the work for K = 2.
            am, m, loss[start:stop], label_q[start:stop] = binary
            if check:
                _check_masked_rows(m, start, array.ndim == 1)
            predicted[start:stop] = am
            return
        sh = _shift(xt, temperature, arena)
        if check:
            _check_masked_rows(sh.max, start, array.ndim == 1)
        predicted[start:stop] = sh.argmax
        if t is not None:
            tt = _transposed(t[start:stop], arena)
            if check:
                _check_targets(tt, start)
            if w is not None:
                tt *= w[:, None]
            main = _soft_loss(sh, tt, arena)
        else:
            li = lab[start:stop]
            at = _flat(li, stop - start)
            lo_i = np.take(sh.lo, at)
            main = _label_loss(-np.take(sh.hi, at), sh.log_s - lo_i, li, w)
            e_i = np.take(sh.exp, at)
            np.copyto(e_i, 1.0, where=li == sh.argmax)
            label_q[start:stop] = _probabilities(e_i, lo_i, sh.s_hi, sh.s_lo)
        if eps:
            uniform = _uniform_loss(sh, w, w_total, arena)
            main = keep[0] * main + (share[0] * uniform + (keep[1] * main + share[1] * uniform))
            main[np.isnan(main)] = np.inf  # inf - inf from the low parts of an infinite loss
        loss[start:stop] = main

    _run(_blocks(n, k), work, k)
    if w is not None or eps or t is not None or temperature != 1.0:
        _redo_overflowed_rows(loss, y, lab, t, w, eps, temperature)
    if t is not None:
        return RowLosses(loss=loss, weight=np.ones(n), predicted=predicted,
                         label_probability=label_q, counted=counted)
    row_w = np.ones(n) if w is None else w[lab]
    if ignore_index is not None:
        loss = np.where(counted, loss, 0.0)
        row_w = np.where(counted, row_w, 0.0)
        label_q = np.where(counted, label_q, np.nan)
    return RowLosses(loss=loss, weight=row_w, predicted=predicted,
                     label_probability=label_q, counted=counted)


def _redo_overflowed_rows(loss: FloatArray, y: FloatArray, lab: IntArray,
                          t: FloatArray | None, w: FloatArray | None, eps: float,
                          temperature: float) -> None:
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
        loss[i] = _exact_row_loss(y[i], int(lab[i]), None if t is None else t[i], w, eps,
                                  temperature)


def _exact_row_loss(row: FloatArray, label: int, target: FloatArray | None,
                    w: FloatArray | None, eps: float, temperature: float) -> float:
    k = row.size
    log_s = Fraction(float(softmax_steps(row, temperature=temperature).log_sum_exp_shifted))
    top = Fraction(float(row.max()))
    temp = Fraction(temperature)

    def nll(c: int) -> Fraction | None:  # None: +inf (a masked class)
        return None if row[c] == -np.inf else (top - Fraction(float(row[c]))) / temp + log_s

    def weighted(coefficients: list[Fraction]) -> Fraction | None:
        total = Fraction(0)
        for c, a in enumerate(coefficients):
            if a == 0:
                continue  # 0 * log 0 = 0
            value = nll(c)
            if value is None:
                return None
            total += a * value
        return total

    wf = [Fraction(1)] * k if w is None else [Fraction(float(x)) for x in w]
    if target is None:
        main = weighted([wf[c] if c == label else Fraction(0) for c in range(k)])
    else:
        main = weighted([wf[c] * Fraction(float(target[c])) for c in range(k)])
    if main is not None and eps:
        uniform = weighted(wf)
        e = Fraction(eps)
        main = None if uniform is None else (1 - e) * main + e / k * uniform
    if main is None:
        return math.inf
    try:
        return float(main)
    except OverflowError:
        return math.inf


def _label_loss(a_hi: FloatArray, b: FloatArray, li: IntArray,
                w: FloatArray | None) -> FloatArray:
    """``w[label] * (a_hi + b)``, the product exact before its one rounding (TwoProduct).

    A zero weight gives 0 even when the loss is infinite (the row does not count).
    """
    if w is None:
        return a_hi + b
    wi = w[li]
    p, pe = _two_prod(wi, a_hi)
    return np.where(wi == 0, 0.0, p + (pe + wi * b))


def _binary_rows(xt: FloatArray, li: IntArray, w: FloatArray | None, temperature: float,
                 ) -> tuple[IntArray, FloatArray, FloatArray, FloatArray] | None:
    """Argmax, max, loss and q of the label for a ``(2, b)`` block; same bits as _shift.

    None when a difference overflows with a temperature (the general path handles it).
    """
    y0, y1 = xt[0], xt[1]
    am = (y1 > y0).astype(np.int64)  # ties: the first index
    m = np.maximum(y0, y1)
    other = np.minimum(y0, y1)
    hi = other - m
    bb = hi - other
    lo = (other - (hi - bb)) - (m + bb)  # TwoSum(other, -m)
    if temperature != 1.0 and np.isinf(hi).any():
        return None
    if temperature != 1.0:
        hi, lo = _divide_dd(hi, lo, temperature)
    e = np.exp(hi)
    if np.isnan(lo).any():  # the other class is masked or beyond the float range
        lo[np.isinf(hi)] = 0.0
    s_hi = 1.0 + e
    s_lo = ((1.0 - s_hi) + e) + e * lo  # Fast2Sum(1, e): 1 >= e
    z = s_lo / s_hi
    log_s = np.log(s_hi) + (z - 0.5 * z * z)
    is_max = li == am
    np.copyto(hi, 0.0, where=is_max)
    np.copyto(lo, 0.0, where=is_max)
    np.copyto(e, 1.0, where=is_max)
    loss = _label_loss(-hi, log_s - lo, li, w)
    return am, m, loss, _probabilities(e, lo, s_hi, s_lo)


def _weighted_neg_shift(sh: _Shift, v: FloatArray,
                        arena: _Arena) -> tuple[FloatArray, FloatArray]:
    """``sum_c v_c * -(hi_c + lo_c)`` per row as (hi, lo); 0 where v_c = 0 (0 log 0 = 0)."""
    products = np.multiply(v, sh.hi, out=arena.take(sh.hi.shape))  # all <= 0
    g_hi, g_lo = _sum0(products, arena)
    if np.isnan(g_hi).any():  # 0 * -inf: a masked class without weight; 0 log 0 = 0
        np.copyto(products, 0.0, where=~(v > 0))
        g_hi, g_lo = _sum0(products, arena)
    g_lo += np.einsum("kb,kb->b", v, sh.lo)
    return -g_hi, -g_lo


def _soft_loss(sh: _Shift, v: FloatArray, arena: _Arena) -> FloatArray:
    """``-sum_c v_c log q_c = log s * sum_c v_c + sum_c v_c * -(y_c - m)`` (no cancellation)."""
    v_hi, v_lo = _sum0(v, arena)
    g_hi, g_lo = _weighted_neg_shift(sh, v, arena)
    with np.errstate(invalid="ignore"):
        p, pe = _two_prod(sh.log_s, v_hi)
        # This association makes a one-hot target give the same bits as its label.
        out = g_hi + (p + (pe + sh.log_s * v_lo + g_lo))
    return np.where(np.isnan(out), np.inf, out)


def _uniform_loss(sh: _Shift, w: FloatArray | None, w_total: float,
                  arena: _Arena) -> FloatArray:
    """``sum_c w_c * -log q_c`` (the label-smoothing term before its eps / K)."""
    if w is None:
        g_hi, g_lo = _sum0(sh.hi, arena)
        g_hi, g_lo = -g_hi, -(g_lo + sh.lo.sum(axis=0))
    else:
        g_hi, g_lo = _weighted_neg_shift(sh, np.broadcast_to(w[:, None], sh.hi.shape), arena)
    with np.errstate(invalid="ignore"):
        p, pe = _two_prod(sh.log_s, np.float64(w_total))
        out = p + (g_hi + (pe + g_lo))
    return np.where(np.isnan(out), np.inf, out)


def to_base(loss_nats: FloatArray | float, base: Base | str = "e") -> FloatArray | float:
    """Convert nats to bits (base ``"2"``) or bans (base ``"10"``).

    Multiplies by ``1/ln(b)`` held as a double-double, so the result is within about
    half an ulp of the exact conversion of *loss_nats*.

    Examples
    --------
    >>> to_base(1.0, "2")
    1.4426950408889634
    >>> to_base(np.array([np.log(8.0), np.inf]), "2")
    array([ 3., inf])
    """
    if base == "e":
        return loss_nats
    if base not in _LOG_E_IN_BASE:
        raise InvalidInputError("base must be 'e', '2' or '10'", value=base)
    c_hi, c_lo = _LOG_E_IN_BASE[base]
    x = np.asarray(loss_nats, dtype=np.float64)
    p, e = _two_prod(x, c_hi)
    with np.errstate(invalid="ignore"):
        out = p + (e + x * c_lo)
    if np.ndim(loss_nats) == 0 and not isinstance(loss_nats, np.ndarray):
        return float(out)
    return out


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
        ``eps`` in [0, 1): the target becomes ``(1 - eps) * onehot + eps / K``.
    temperature : float
        Divide the logits by this positive number first.
    reduction : {"mean", "sum", "none"}
        ``"none"`` returns the per-row losses.
    base : {"e", "2", "10"}
        Units: nats, bits or bans.
    check : bool
        ``False`` skips validating logits, labels and targets (already validated).

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
    """
    if reduction not in ("mean", "sum", "none"):
        raise InvalidInputError("reduction must be 'mean', 'sum' or 'none'", value=reduction)
    if base not in UNITS:
        raise InvalidInputError("base must be 'e', '2' or '10'", value=base)
    one_row = np.ndim(logits) == 1
    rows = row_losses(logits, labels, targets=targets, weights=weights,
                      ignore_index=ignore_index, label_smoothing=label_smoothing,
                      temperature=temperature, check=check)
    if reduction == "none":
        out = to_base(rows.loss, base)
        return out[0] if one_row else out  # type: ignore[index]
    total = ExactSum()
    total.add(rows.loss)
    if reduction == "sum":
        return total.value(base)
    denominator = ExactSum()
    denominator.add(rows.weight)
    return total.ratio(denominator, base)

