"""The softmax cross-entropy of one sample computed in float32, float16 or bfloat16.

Every step is rounded to the chosen format, as a kernel working in that format rounds it:
the logits, the shift, each exponential, the log of the sum, the loss; only the sum of
the exponentials is accumulated in float32 and rounded once (what PyTorch, JAX and every
GPU kernel do for a reduction). Beside it the naive ``q = e^y / sum e^y`` in the same
format.

The formats are emulated exactly, with no dependency: a value is rounded from float64 to
the format's precision with round-to-nearest-even on its bit pattern (bfloat16: 8
significant bits, float32's exponent range; float16 and float32 by numpy's own correctly
rounded conversions), overflowing to ``inf`` and underflowing through the format's
subnormals to 0. An arithmetic operation on two such values is exact in float64 and then
rounded once, so it is correctly rounded; ``exp`` and ``log`` are numpy's float64 ones,
then rounded (correct except within 1e-16 of a rounding tie). ``ml_dtypes`` (the dtypes
JAX uses) is the independent oracle in the tests, not a dependency.

Pure numpy: no I/O, no printing.

>>> float(round_to(np.array(36.04), "bfloat16")[()]), spacing(36.04, "bfloat16")
(36.0, 0.25)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: name -> (significant bits, smallest normal exponent, largest finite value)
FORMATS: dict[str, tuple[int, int, float]] = {
    "float32": (24, -126, float(np.finfo(np.float32).max)),
    "float16": (11, -14, 65504.0),
    "bfloat16": (8, -126, float.fromhex("0x1.fep127")),
}


def _check(name: str) -> tuple[int, int, float]:
    if name not in FORMATS:
        raise ValueError(f"dtype must be one of {', '.join(FORMATS)}, got {name!r}")
    return FORMATS[name]


def round_to(x: npt.ArrayLike, name: str) -> FloatArray:
    """*x* (float64) rounded to the format *name*, round-to-nearest-even, as float64."""
    bits, min_exponent, largest = _check(name)
    values = np.asarray(x, dtype=np.float64)
    if name == "float32":
        with np.errstate(over="ignore"):
            return values.astype(np.float32).astype(np.float64)
    if name == "float16":
        with np.errstate(over="ignore"):
            return values.astype(np.float16).astype(np.float64)
    out = np.array(values, dtype=np.float64, copy=True)
    finite = np.isfinite(out)
    # Below the smallest normal: a fixed quantum; np.round rounds half to even.
    quantum = 2.0 ** (min_exponent - bits + 1)
    tiny = finite & (np.abs(out) < 2.0**min_exponent)
    out[tiny] = np.round(out[tiny] / quantum) * quantum
    normal = finite & ~tiny
    raw = out[normal].view(np.uint64)
    drop = 52 - (bits - 1)
    half = np.uint64((1 << (drop - 1)) - 1)
    odd = (raw >> np.uint64(drop)) & np.uint64(1)
    rounded = (raw + half + odd) & ~np.uint64((1 << drop) - 1)
    out[normal] = rounded.view(np.float64)
    too_big = finite & (np.abs(out) > largest)
    out[too_big] = np.copysign(np.inf, out[too_big])
    return out


def spacing(x: float, name: str) -> float:
    """The distance between consecutive values of the format at *x* (its ulp)."""
    bits, min_exponent, _ = _check(name)
    if not math.isfinite(x):
        return math.nan
    exponent = max(math.frexp(abs(x))[1] - 1, min_exponent) if x else min_exponent
    return 2.0 ** (exponent - bits + 1)


@dataclass(frozen=True)
class Step:
    """One step of the computation in the format, beside its exact value."""

    name: str  #: what is computed: "exp(y_k - m)"
    value: tuple[float, ...]  #: the format's values (float64 numbers)
    exact: tuple[float, ...]  #: the exact values (float64, from xent's kernel)
    marks: tuple[str, ...]  #: "overflow", "underflow", "cancellation", "grid", "rounded", "lost"

    def ulps(self, name: str) -> tuple[float, ...]:
        """Each value's error in units of the format's last place at the exact value."""
        out = []
        for v, e in zip(self.value, self.exact, strict=True):
            if math.isnan(v) or math.isinf(v) or math.isinf(e):
                out.append(0.0 if v == e else math.inf)
            else:
                out.append(abs(v - e) / spacing(e, name))
        return tuple(out)


@dataclass(frozen=True)
class LowPrecision:
    """The loss of one sample in a low-precision format, step by step."""

    name: str  #: "float32", "float16" or "bfloat16"
    steps: tuple[Step, ...]  #: the stable computation
    naive_steps: tuple[Step, ...]  #: q = e^y / sum e^y, L = -log q_i
    loss: float  #: the stable loss in the format
    naive_loss: float
    exact_loss: float
    loss_spacing: float  #: the format's step at the exact loss ("grid")


def _marks(value: FloatArray, exact: FloatArray) -> tuple[str, ...]:
    marks = []
    if np.any(np.isinf(value) & np.isfinite(exact)):
        marks.append("overflow")
    if np.any((value == 0) & (exact != 0)):
        marks.append("underflow")
    if np.any(np.isnan(value)):
        marks.append("nan")
    if np.any((value != exact) & np.isfinite(value)) and not marks:
        marks.append("rounded")
    return tuple(marks)


def _step(
    name: str, value: FloatArray, exact: npt.ArrayLike, marks: tuple[str, ...] | None = None
) -> Step:
    v = np.atleast_1d(np.asarray(value, dtype=np.float64)) + 0.0  # -0.0 reads as 0
    e = np.atleast_1d(np.asarray(exact, dtype=np.float64))
    return Step(
        name, tuple(v.tolist()), tuple(e.tolist()), _marks(v, e) if marks is None else marks
    )


def low_precision_loss(
    logits: npt.ArrayLike,
    label: int,
    name: str,
    *,
    exact_shifted: npt.ArrayLike,
    exact_exp: npt.ArrayLike,
    exact_sum: float,
    exact_log_sum: float,
    exact_loss: float,
    exact_probabilities: npt.ArrayLike,
) -> LowPrecision:
    """Work one sample with a label through the stable and the naive loss in *name*.

    The ``exact_*`` arguments are xent's float64 values of the same steps (the kernel's),
    against which each step's error is measured.
    """
    _check(name)

    def r(a: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return round_to(a, name)

    y64 = np.asarray(logits, dtype=np.float64)
    steps = []
    y = r(y64)
    steps.append(_step("y (logits in the format)", y, y64))
    with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
        m = float(np.max(y))
        shifted = r(y - m)
        steps.append(_step("y_k - m", shifted, exact_shifted))
        e = r(np.exp(shifted))
        steps.append(_step("exp(y_k - m)", e, exact_exp))
        # The sum is accumulated in float32 (as reductions are), then rounded to the format.
        s = float(r(np.float64(np.sum(e.astype(np.float32), dtype=np.float32)))[()])
        steps.append(_step("s = sum exp(y_k - m)", np.array(s), exact_sum))
        log_s = float(r(np.log(s))[()])
        # s rounds to exactly 1 once the other terms are below half the format's epsilon:
        # log s = 0, the tail cancels out of the loss.
        absorbed = ("cancellation",) if log_s == 0.0 and exact_log_sum > 0 else None
        steps.append(_step("log s", np.array(log_s), exact_log_sum, absorbed))
        margin = float(r(m - y[label])[()])
        loss = float(r(margin + log_s)[()])
        marks: tuple[str, ...] = ()
        if loss == 0.0 and exact_loss > 0:
            marks = ("lost",)
        elif math.isfinite(exact_loss) and spacing(exact_loss, name) >= 1e-3 * max(
            exact_loss, 1e-300
        ):
            marks = ("grid",)
        steps.append(_step("L = (m - y_i) + log s", np.array(loss), exact_loss, marks))
        # Naive: e^y without the shift, q = e^y / sum, L = -log q_i.
        naive = []
        e_raw = r(np.exp(y))
        naive.append(_step("exp(y_k)", e_raw, np.exp(y64)))
        total = float(r(np.float64(np.sum(e_raw.astype(np.float32), dtype=np.float32)))[()])
        naive.append(_step("sum exp(y_k)", np.array(total), np.sum(np.exp(y64))))
        q = r(e_raw / total)
        naive.append(_step("q_k = exp(y_k) / sum", q, exact_probabilities))
        naive_loss = float(r(-np.log(q[label]))[()]) + 0.0
        naive.append(_step("L = -log q_i", np.array(naive_loss), exact_loss))
    return LowPrecision(
        name=name,
        steps=tuple(steps),
        naive_steps=tuple(naive),
        loss=loss,
        naive_loss=naive_loss,
        exact_loss=float(exact_loss),
        loss_spacing=spacing(exact_loss, name) if math.isfinite(exact_loss) else math.nan,
    )


@dataclass(frozen=True)
class LowPrecisionRows:
    """Per-row losses of a batch in a format, stable and naive (as float64 numbers)."""

    stable: FloatArray
    naive: FloatArray


def low_precision_rows(logits: npt.ArrayLike, labels: npt.ArrayLike, name: str) -> LowPrecisionRows:
    """:func:`low_precision_loss`'s two losses for each row of ``(N, K)`` logits.

    The same rounding at every step (the sum of the exponentials accumulated in float32);
    vectorized over the rows.
    """
    _check(name)

    def r(a: npt.ArrayLike) -> FloatArray:
        return round_to(a, name)

    y = r(np.atleast_2d(np.asarray(logits, dtype=np.float64)))
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    rows = np.arange(y.shape[0])
    with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
        m = y.max(axis=1)
        e = r(np.exp(r(y - m[:, None])))
        s = r(e.astype(np.float32).sum(axis=1, dtype=np.float32).astype(np.float64))
        stable = r(r(m - y[rows, lab]) + r(np.log(s)))
        raw = r(np.exp(y))
        total = r(raw.astype(np.float32).sum(axis=1, dtype=np.float32).astype(np.float64))
        q = r(raw[rows, lab] / total)
        naive = r(-np.log(q))
    return LowPrecisionRows(stable + 0.0, naive + 0.0)
