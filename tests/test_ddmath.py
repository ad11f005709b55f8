"""The double-double exp and log1p (xentcli.core._ddmath) against mpmath.

Each result ``hi + lo`` must be within the module's stated relative bound of the exact
value (mpmath at 400 bits), over wide random arguments and the hard ones: table and
reduction boundaries, the ends of the ranges, subnormal results and arguments.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from xentcli.core import _ddmath as dm


def _rel_errors(f_exact, hi, lo, got_hi, got_lo, floor=0.0, absolute=False):
    worst = 0.0
    with mp.workprec(400):
        for a, b, c, d in zip(
            hi.tolist(), lo.tolist(), got_hi.tolist(), got_lo.tolist(), strict=True
        ):
            exact = f_exact(mp.mpf(a) + mp.mpf(b))
            err = abs(mp.mpf(c) + mp.mpf(d) - exact)
            if exact > floor:
                worst = max(worst, float(err / exact))
            if absolute:
                assert err <= dm.EXP_ABS_ERR + dm.EXP_REL_ERR * exact, (a, b)
    return worst


def _exp_arguments() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20)
    step = math.log(2) / 256
    hi = np.concatenate(
        [
            rng.uniform(-746, 0, 4000),
            rng.uniform(-1, 1, 1500) * 10.0 ** rng.integers(-300, 1, 1500),
            rng.uniform(0, 709, 500),
            # halfway between reduction points: |r| at its largest
            (rng.integers(-275_000, 0, 1000) + 0.5) * step,
            rng.integers(-275_000, 0, 500) * step,  # r near 0
            [0.0, -0.0, -5e-324, -708.39, -708.4, -709.1, -744.4, -745.1, -745.9, 709.78],
        ]
    )
    lo = hi * rng.uniform(-1, 1, hi.size) * 2.0**-53
    return hi, lo


def test_exp_within_its_bound() -> None:
    hi, lo = _exp_arguments()
    e_hi, e_lo = dm.exp_dd(hi, lo)
    # Below 2**-969 the low part is subnormal: the absolute bound takes over.
    worst = _rel_errors(mp.exp, hi, lo, e_hi, e_lo, floor=mp.mpf(2) ** -969, absolute=True)
    assert worst <= dm.EXP_REL_ERR
    assert worst > 2.0**-90  # the comparison is real: errors are measured, not zero


def test_exp_mantissa_within_its_bound_down_to_underflow() -> None:
    hi, lo = _exp_arguments()
    parts = dm.exp_parts(hi, lo)
    worst = 0.0
    with mp.workprec(400):
        for a, b, m1, m2, k in zip(
            hi.tolist(),
            lo.tolist(),
            parts.m_hi.tolist(),
            parts.m_lo.tolist(),
            parts.k.tolist(),
            strict=True,
        ):
            if a < dm.EXP_ZERO_BELOW:
                continue
            exact = mp.exp(mp.mpf(a) + mp.mpf(b)) / mp.mpf(2) ** k
            worst = max(worst, float(abs(mp.mpf(m1) + mp.mpf(m2) - exact) / exact))
    assert worst <= dm.EXP_REL_ERR


def test_exp_parts_scale_back_exactly() -> None:
    hi, lo = _exp_arguments()
    parts = dm.exp_parts(hi, lo)
    normal = (parts.k >= -1022) & ~parts.zero
    e_hi, _ = dm.exp_dd(hi, lo)
    assert np.array_equal(np.ldexp(parts.m_hi[normal], parts.k[normal]), e_hi[normal])
    assert ((parts.m_hi >= 0.99) & (parts.m_hi < 2.0))[~parts.zero].all()


def test_exp_limits() -> None:
    e_hi, e_lo = dm.exp_dd(np.array([-np.inf, -800.0, -1e300, 0.0]), np.zeros(4))
    assert list(e_hi) == [0.0, 0.0, 0.0, 1.0]
    assert list(e_lo) == [0.0, 0.0, 0.0, 0.0]


def test_log1p_within_its_bound() -> None:
    rng = np.random.default_rng(21)
    x = np.concatenate(
        [
            10.0 ** rng.uniform(-320, 12, 4000),
            rng.uniform(0, 4, 1500),
            2.0**-11 * (1 + rng.uniform(-1e-2, 1e-2, 500)),  # the branch boundary
            # M near the log table's midpoints (largest |u|)
            (1 + (rng.integers(0, 1024, 500) + 0.5) / 1024) * 2.0 ** rng.integers(0, 30, 500) - 1,
            [0.0, 5e-324, 2.0**-500, 2.0**-11, 1.0, 2.0**60],
        ]
    )
    lo = x * rng.uniform(-1, 1, x.size) * 2.0**-53
    lo[x == 0] = 0.0
    l_hi, l_lo = dm.log1p_dd(x, lo)
    worst = _rel_errors(mp.log1p, x, lo, l_hi, l_lo)
    assert worst <= dm.LOG_REL_ERR
    assert worst > 2.0**-90


@pytest.mark.parametrize("fn", ["exp", "log"])
def test_libm_is_not_used(monkeypatch: pytest.MonkeyPatch, fn: str) -> None:
    """Replacing numpy's transcendental functions changes nothing (they are not called)."""
    hi, lo = _exp_arguments()
    x = np.abs(hi[:200])
    expected = dm.exp_dd(hi, lo), dm.log1p_dd(x, np.zeros_like(x))
    for name in ("exp", "log", "log1p", "expm1", "log2", "exp2"):
        monkeypatch.setattr(np, name, None)
    got = dm.exp_dd(hi, lo), dm.log1p_dd(x, np.zeros_like(x))
    for a, b in zip(expected, got, strict=True):
        assert a[0].tobytes() == b[0].tobytes()
        assert a[1].tobytes() == b[1].tobytes()
