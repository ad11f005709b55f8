"""Units of a loss: nats (base e), bits (base 2) and bans (base 10), and the conversion.

A loss in nats becomes bits or bans by one multiplication by ``1/ln(b)``, held as a
double-double so that the result is rounded about once.

Pure numpy: no I/O, no printing.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from xentcli.core._compensated import two_prod
from xentcli.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]
Base = Literal["e", "2", "10"]

UNITS = {"e": "nats", "2": "bits", "10": "bans"}

#: ln(b), the divisor that turns nats into the base's units (one rounding of log)
LN_BASE = {"e": 1.0, "2": math.log(2.0), "10": math.log(10.0)}

#: 1/ln(b) as a double-double (hi, lo): nats -> bits / bans is one multiplication.
LOG_E_IN_BASE = {
    "2": (1.4426950408889634, 2.0355273740931033e-17),
    "10": (0.4342944819032518, 1.098319650216765e-17),
}


def check_base(base: object) -> None:
    """Raise :class:`~xentcli.errors.InvalidInputError` unless *base* is a key of UNITS."""
    if base not in UNITS:
        raise InvalidInputError("base must be 'e', '2' or '10'", value=base)


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
    check_base(base)
    c_hi, c_lo = LOG_E_IN_BASE[base]
    x = np.asarray(loss_nats, dtype=np.float64)
    p, e = two_prod(x, c_hi)
    with np.errstate(invalid="ignore"):
        out = p + (e + x * c_lo)
    if np.ndim(loss_nats) == 0 and not isinstance(loss_nats, np.ndarray):
        return float(out)
    return out
