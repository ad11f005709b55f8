"""The entropy of a target distribution and its KL divergence from the softmax.

For a soft target p and the softmax q of the logits, the cross-entropy splits as

    L = -sum_k p_k log q_k = H(p) + KL(p || q),
    H(p) = -sum_k p_k log p_k,      KL(p || q) = sum_k p_k (log p_k - log q_k),

the distillation view: H is the part no model can remove, KL what the model adds.

KL is small exactly when q is close to p, where ``log p_k - log q_k`` cancels; it is
computed without that cancellation:

- ``log q_k = (y_k - m) - log s`` with the exact shift ``hi + lo``, ``s`` summed from
  double-double exponentials and ``log s`` a double-double, and ``log p_k`` a
  double-double too (:mod:`xentcli.core._doubledouble`, about 2**-98 absolute), so that
  ``u_k = log q_k - log p_k`` keeps its relative precision;
- the sum is taken over non-negative terms only: since ``sum q = 1``,

      KL = sum_{p_k > 0} p_k (e^u_k - 1 - u_k) + sum_{p_k = 0} q_k + (sum_k p_k - 1),

  and ``e^u - 1 - u = u^2 (1/2 + u/6 + u^2/24 + ...)`` is summed as a series for
  ``|u| < 1/2`` (elsewhere ``q_k - p_k - p_k u_k`` in double-double). The last term is 0
  for a target whose floats sum exactly to 1, and corrects the identity otherwise.

Both are within 4 ulp of the exact value of the float64 inputs (tests/test_divergence.py,
against mpmath). For KL this holds while some ``|log p_k - log q_k|`` is above about
``1e-13``, that is down to KL of about ``1e-27``; closer still, the double-double logs
cannot resolve the difference and the error is an absolute ``1e-29`` at most. Results are
in nats, per row.

Pure numpy: no I/O, no printing.

>>> round(float(entropy([0.5, 0.5])), 12)
0.69314718056
>>> float(kl_divergence([0.0, 0.0], [0.5, 0.5]))
0.0
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import xentcli.core._doubledouble as dd
from xentcli.errors import InvalidInputError

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]

_SERIES_LIMIT = 0.5
# 1 / (n + 2)! for n = 0..19: the series of (e^u - 1 - u) / u^2, enough below 1/2.
_SERIES = [1.0 / float(np.prod(np.arange(1, n + 3, dtype=np.float64))) for n in range(20)]


def _targets(targets: ArrayLike, shape: tuple[int, ...] | None = None) -> FloatArray:
    p = np.asarray(targets, dtype=np.float64)
    if p.ndim not in (1, 2) or p.shape[-1] == 0:
        raise InvalidInputError("targets must be a row (K,) or rows (N, K)", field="target")
    if shape is not None and p.shape != shape:
        raise InvalidInputError(f"targets: expected shape {shape}, got {p.shape}", field="target")
    if not (np.isfinite(p).all() and (p >= 0).all()):
        raise InvalidInputError("targets must be finite and non-negative", field="target")
    return p


def _log_p(p: FloatArray) -> dd.DD:
    return dd.log_dd(p)


def entropy(targets: ArrayLike) -> FloatArray:
    """``H(p) = -sum_k p_k log p_k`` in nats, per row (0 log 0 = 0).

    Parameters
    ----------
    targets : array_like
        ``(K,)`` or ``(N, K)`` probabilities.

    Returns
    -------
    numpy.ndarray
        Shape ``()`` or ``(N,)``, within 2 ulp of the exact value.

    Examples
    --------
    >>> entropy([[1.0, 0.0], [0.25, 0.75]]).round(6)
    array([0.      , 0.562335])
    """
    p = _targets(targets)
    lp = _log_p(p)
    terms = dd.mul((p, np.zeros_like(p)), lp)
    positive = p > 0
    terms = (np.where(positive, terms[0], 0.0), np.where(positive, terms[1], 0.0))
    hi, lo = dd.sum_last(terms)
    return -(hi + lo) + 0.0


def _series(u: FloatArray) -> FloatArray:
    """``(e^u - 1 - u) / u^2`` for ``|u| < 1/2`` (Horner, all terms of one size order)."""
    total = np.full_like(u, _SERIES[-1])
    for c in reversed(_SERIES[:-1]):
        total = total * u + c
    return total


def kl_divergence(logits: ArrayLike, targets: ArrayLike, *, temperature: float = 1.0) -> FloatArray:
    """``KL(p || q) = sum_k p_k log(p_k / q_k)`` in nats, per row, q the softmax.

    Parameters
    ----------
    logits : array_like
        ``(K,)`` or ``(N, K)``; ``-inf`` masks a class (KL is ``inf`` when such a class
        has a positive target).
    targets : array_like
        Probabilities of the same shape.
    temperature : float
        The softmax is of ``logits / temperature``.

    Returns
    -------
    numpy.ndarray
        Shape ``()`` or ``(N,)``, within 4 ulp of the exact value.

    Examples
    --------
    >>> float(kl_divergence([0.0, -40.0], [1.0, 0.0]))
    4.248354255291589e-18
    """
    # Imported here: _kernel is in an import cycle with the package's __init__.
    from xentcli.core._kernel import softmax_steps

    steps = softmax_steps(logits, temperature=temperature)
    hi = np.atleast_2d(steps.shifted)
    lo = np.atleast_2d(steps.shifted_lo)
    lo = np.where(np.isfinite(hi), lo, 0.0)
    p = np.atleast_2d(_targets(targets, np.shape(steps.shifted)))
    e = dd.exp_dd(hi, lo)
    log_s = dd.log_dd(*dd.sum_last(e))
    log_q = dd.add((hi, lo), dd.neg((log_s[0][:, None], log_s[1][:, None])))
    positive = p > 0
    log_p = _log_p(p)
    with np.errstate(invalid="ignore"):
        u = dd.add(log_q, dd.neg(log_p))
        u = (np.where(positive, u[0], 0.0), np.where(positive, u[1], 0.0))
        small = np.abs(u[0]) < _SERIES_LIMIT
        square = dd.mul(u, u)
        near = p * square[0] * _series(np.where(small, u[0], 0.0))
        q = dd.exp_dd(*log_q)
        far = dd.add(q, dd.neg(dd.add((p, np.zeros_like(p)), dd.mul((p, np.zeros_like(p)), u))))
        term_hi = np.where(positive, np.where(small, near, far[0]), q[0])
        term_lo = np.where(positive & ~small, far[1], np.where(positive, 0.0, q[1]))
    masked = (positive & np.isneginf(hi)).any(axis=-1)
    total = dd.sum_last((term_hi, term_lo))
    ones = np.ones(p.shape[:-1])
    excess = dd.add(dd.sum_last((p, np.zeros_like(p))), (-ones, np.zeros_like(ones)))
    total = dd.add(total, excess)
    out = np.where(masked, np.inf, total[0] + total[1]) + 0.0
    return out[0] if np.ndim(steps.shifted) == 1 else out
