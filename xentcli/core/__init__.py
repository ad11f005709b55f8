"""The numerics of xent on numpy arrays: the only door into ``xentcli.core``.

The modules behind it are private (``_kernel``, ``_softmax_block``, ``_loss_block``,
``_compensated``, ``_doubledouble``, ``_divergence``, ``_exact_mean``, ``_frameworks``,
``_lowprecision``, ``_sigmoid``, ``_exactsum``, ``_blocks``, ``_units``, ``_validation``,
``_state``, ``_options``); everything the other layers and users need is re-exported
here. Nothing here does I/O or prints.

The names of the modules that ``xent compute``'s table does not need (divergences,
framework emulation, low precision, the sigmoid loss, the streamed exact means) are
loaded on first use (PEP 562 ``__getattr__``): ``from xentcli.core import entropy``
works as before, and start-up does not pay for them (benchmarks/RESULTS.md, start-up A/B).

>>> from xentcli.core import cross_entropy
>>> float(cross_entropy([[0.0, -40.0]], [0]))
4.248354255291589e-18
"""

from importlib import import_module
from typing import TYPE_CHECKING

from xentcli.core._blocks import THREADS
from xentcli.core._exactsum import ExactSum, GroupedExactSum, fraction_to_base
from xentcli.core._kernel import (
    RowLosses,
    SoftmaxSteps,
    cross_entropy,
    log_softmax,
    logsumexp,
    row_losses,
    softmax,
    softmax_steps,
)
from xentcli.core._options import LossOptions
from xentcli.core._scores import (
    KIND_NAMES,
    SCORE_KINDS,
    ScoreCheck,
    ScoreKind,
    binary_log_scores,
    check_kind,
    check_scores,
    default_sum_tolerance,
    detect_kind,
    log_of_scores,
    row_totals,
)
from xentcli.core._softmax_block import ROW_ARGMAX_CLASSES
from xentcli.core._state import (
    hex_float,
    hex_int,
    need,
    need_dict,
    need_hex_float,
    need_hex_int,
    need_int,
    need_list,
)
from xentcli.core._units import LN_BASE, UNITS, Base, check_base, to_base
from xentcli.core._validation import TARGET_SUM_TOLERANCE

if TYPE_CHECKING:  # loaded on first use by __getattr__ below; imported here for mypy
    from xentcli.core._divergence import entropy, kl_divergence
    from xentcli.core._exact_mean import (
        certain_quotient,
        certain_ratio,
        interval_ratio,
        row_floor,
    )
    from xentcli.core._exact_mean import loss_intervals as exact_loss_intervals
    from xentcli.core._frameworks import FrameworkRows, framework_rows
    from xentcli.core._lowprecision import (
        FORMATS,
        LowPrecision,
        LowPrecisionRows,
        low_precision_loss,
        low_precision_rows,
        round_to,
        spacing,
    )
    from xentcli.core._lowprecision import Step as LowPrecisionStep
    from xentcli.core._sigmoid import (
        ProbabilityLosses,
        SigmoidLosses,
        SigmoidScoreCheck,
        bce_with_logits,
        bce_with_logprobs,
        bce_with_probs,
        detect_sigmoid_kind,
        log1mexp,
        sigmoid_predicted,
    )

#: public name -> (private module, its name there), for the names loaded on first use
_LAZY: dict[str, tuple[str, str]] = {
    "entropy": ("_divergence", "entropy"),
    "kl_divergence": ("_divergence", "kl_divergence"),
    "certain_quotient": ("_exact_mean", "certain_quotient"),
    "certain_ratio": ("_exact_mean", "certain_ratio"),
    "interval_ratio": ("_exact_mean", "interval_ratio"),
    "row_floor": ("_exact_mean", "row_floor"),
    "exact_loss_intervals": ("_exact_mean", "loss_intervals"),
    "FrameworkRows": ("_frameworks", "FrameworkRows"),
    "framework_rows": ("_frameworks", "framework_rows"),
    "FORMATS": ("_lowprecision", "FORMATS"),
    "LowPrecision": ("_lowprecision", "LowPrecision"),
    "LowPrecisionRows": ("_lowprecision", "LowPrecisionRows"),
    "LowPrecisionStep": ("_lowprecision", "Step"),
    "low_precision_loss": ("_lowprecision", "low_precision_loss"),
    "low_precision_rows": ("_lowprecision", "low_precision_rows"),
    "round_to": ("_lowprecision", "round_to"),
    "spacing": ("_lowprecision", "spacing"),
    "SigmoidLosses": ("_sigmoid", "SigmoidLosses"),
    "bce_with_logits": ("_sigmoid", "bce_with_logits"),
    "ProbabilityLosses": ("_sigmoid", "ProbabilityLosses"),
    "SigmoidScoreCheck": ("_sigmoid", "SigmoidScoreCheck"),
    "bce_with_probs": ("_sigmoid", "bce_with_probs"),
    "bce_with_logprobs": ("_sigmoid", "bce_with_logprobs"),
    "detect_sigmoid_kind": ("_sigmoid", "detect_sigmoid_kind"),
    "log1mexp": ("_sigmoid", "log1mexp"),
    "sigmoid_predicted": ("_sigmoid", "sigmoid_predicted"),
}


def __getattr__(name: str) -> object:
    """Load a name of :data:`_LAZY` from its module on first use (then it is a global)."""
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "FORMATS",
    "KIND_NAMES",
    "LN_BASE",
    "ROW_ARGMAX_CLASSES",
    "SCORE_KINDS",
    "TARGET_SUM_TOLERANCE",
    "THREADS",
    "UNITS",
    "Base",
    "ExactSum",
    "FrameworkRows",
    "GroupedExactSum",
    "LossOptions",
    "LowPrecision",
    "LowPrecisionRows",
    "LowPrecisionStep",
    "ProbabilityLosses",
    "RowLosses",
    "ScoreCheck",
    "ScoreKind",
    "SigmoidLosses",
    "SigmoidScoreCheck",
    "SoftmaxSteps",
    "bce_with_logits",
    "bce_with_logprobs",
    "bce_with_probs",
    "binary_log_scores",
    "certain_quotient",
    "certain_ratio",
    "check_base",
    "check_kind",
    "check_scores",
    "cross_entropy",
    "default_sum_tolerance",
    "detect_kind",
    "detect_sigmoid_kind",
    "entropy",
    "exact_loss_intervals",
    "fraction_to_base",
    "framework_rows",
    "hex_float",
    "hex_int",
    "interval_ratio",
    "kl_divergence",
    "log1mexp",
    "log_of_scores",
    "log_softmax",
    "logsumexp",
    "low_precision_loss",
    "low_precision_rows",
    "need",
    "need_dict",
    "need_hex_float",
    "need_hex_int",
    "need_int",
    "need_list",
    "round_to",
    "row_floor",
    "row_losses",
    "row_totals",
    "sigmoid_predicted",
    "softmax",
    "softmax_steps",
    "spacing",
    "to_base",
]
