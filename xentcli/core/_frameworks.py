"""What each machine-learning library returns for the same logits: emulations.

The same sample (or batch) gives different numbers in PyTorch, Keras, optax,
scikit-learn and SciPy, for three reasons: the *convention* (how label smoothing spreads
its mass, what a weighted mean divides by), the *precision* (float32 by default in Keras,
JAX and most training code) and the *formula* (probabilities clipped before the log, a
log-sum-exp that loses the loss to rounding). Each :class:`Convention` below reproduces
one library call with numpy, operation by operation as its source code does it (no
library is imported): the test suite checks each against the real library where it is
installed (PyTorch, scikit-learn, SciPy) and against the documented formula otherwise
(Keras, optax); docs/frameworks.md cites the sources.

Every convention gives per-row values and the denominator its default reduction divides
by, so that a batch's mean is ``sum(loss) / sum(weight)`` over all its rows; and beside
them xent's exact value of the same convention (the same mathematics without the
rounding, the clipping or the cancellation).

Pure numpy: no I/O, no printing. Values in nats.

>>> rows = framework_rows([[0.0, -40.0]], [0])
>>> [(r.name, float(r.loss[0])) for r in rows][:2]
[('PyTorch float64', 0.0), ('PyTorch float32', 0.0)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from xentcli.core._exactsum import ExactSum
from xentcli.core._kernel import row_losses

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

KERAS_EPSILON = 1e-7  #: keras.backend.epsilon(), the clip of probabilities


@dataclass(frozen=True)
class FrameworkRows:
    """One convention's per-row values for a batch, and its reduction's denominators."""

    name: str  #: short name: "PyTorch float32"
    function: str  #: the call as written in that library
    note: str  #: what makes it differ from the exact value
    loss: FloatArray  #: the value the library computes for each row (as float64)
    weight: FloatArray  #: each row's share of the mean's denominator
    exact: FloatArray  #: the exact value of the same convention, per row
    mean_note: str = ""  #: how its mean is formed, when that is the point
    dtype: str = "float64"  #: the precision the library computes in

    def mean(self) -> float:
        """The library's mean: the rows' values summed exactly, divided once."""
        return _ratio(self.loss, self.weight)

    def exact_mean(self) -> float:
        return _ratio(self.exact, self.weight)


def _ratio(values: FloatArray, weights: FloatArray) -> float:
    total, denominator = ExactSum(), ExactSum()
    total.add(values)
    denominator.add(weights)
    try:
        return total.ratio(denominator)
    except ValueError:
        return float("nan")


# ------------------------------------------------------------------- the formulas
def textbook_log_softmax(y: FloatArray, dtype: type[np.floating]) -> npt.NDArray[np.floating]:
    """``(y - m) - log(sum exp(y - m))`` in *dtype*, as torch's and JAX's kernels do it.

    No ``log1p``: ``log s`` rounds to 0 once ``s - 1`` is below the dtype's epsilon, so a
    confident prediction's loss is lost (0 instead of 4.2e-18 for logits [0, -40]).
    """
    x = y.astype(dtype)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        shifted = x - x.max(axis=-1, keepdims=True)
        result: npt.NDArray[np.floating] = shifted - np.log(
            np.exp(shifted).sum(axis=-1, keepdims=True)
        )
        return result


def textbook_softmax(y: FloatArray, dtype: type[np.floating]) -> npt.NDArray[np.floating]:
    """``exp(y - m) / sum exp(y - m)`` in *dtype* (a model's softmax output layer)."""
    x = y.astype(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        q: npt.NDArray[np.floating] = e / e.sum(axis=-1, keepdims=True)
        return q


def _pick(a: npt.NDArray[np.floating], labels: IntArray) -> npt.NDArray[np.floating]:
    return np.take_along_axis(a, labels[:, None], axis=-1)[:, 0]


def _onehot(labels: IntArray, k: int) -> FloatArray:
    out = np.zeros((labels.size, k))
    out[np.arange(labels.size), labels] = 1.0
    return out


def _product_sum(
    p: npt.NDArray[np.floating], lq: npt.NDArray[np.floating]
) -> npt.NDArray[np.floating]:
    """``-sum_k p_k log q_k`` as the libraries form it: 0 * -inf is nan there."""
    with np.errstate(invalid="ignore"):
        total: npt.NDArray[np.floating] = -(p * lq).sum(axis=-1)
        return total


@dataclass(frozen=True)
class _Input:
    y: FloatArray  #: (N, K) logits, divided by the temperature
    labels: IntArray | None
    targets: FloatArray | None  #: soft targets as given (unsmoothed)
    weights: FloatArray | None
    eps: float
    exact_torch: FloatArray  #: xent's row losses with PyTorch's semantics
    exact_weight: FloatArray  #: PyTorch's denominators per row
    exact_plain: FloatArray  #: xent's row losses, no weights, smoothing as given

    @property
    def k(self) -> int:
        return int(self.y.shape[1])

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def target(self, eps: float | None = None) -> FloatArray:
        """The (smoothed) target rows: (1 - eps) t + eps / K."""
        eps = self.eps if eps is None else eps
        t = self.targets if self.targets is not None else _onehot(self._labels, self.k)
        return (1.0 - eps) * t + eps / self.k if eps else t

    @property
    def _labels(self) -> IntArray:
        assert self.labels is not None
        return self.labels

    def sample_weight(self) -> FloatArray:
        """Keras/scikit-learn sample weights from class weights: w[label] (argmax of a
        soft target, as Keras's ``fit(class_weight=...)`` does), 1 without weights."""
        if self.weights is None:
            return np.ones(self.n)
        index = self.labels if self.labels is not None else np.argmax(self.target(0.0), axis=1)
        return self.weights[index]


def _torch(data: _Input, dtype: type[np.floating]) -> FrameworkRows:
    lq = textbook_log_softmax(data.y, dtype)
    eps = dtype(data.eps)
    w = np.ones(data.k, dtype=dtype) if data.weights is None else data.weights.astype(dtype)
    bits = "float64" if dtype is np.float64 else "float32"
    with np.errstate(invalid="ignore", over="ignore"):
        if data.labels is not None:
            nll = -w[data.labels] * _pick(lq, data.labels)
            if data.eps:
                smooth = -(lq * w).sum(axis=-1)
                loss = (dtype(1) - eps) * nll + (eps / dtype(data.k)) * smooth
            else:
                loss = nll
            weight = w[data.labels].astype(np.float64)
        else:
            t = data.target().astype(dtype)
            loss = _product_sum(t * w, lq)
            weight = np.ones(data.n)
    notes = {
        np.float64: "log s = log(sum e^(y - m)), not log1p: a loss below 1.1e-16 rounds to 0",
        np.float32: "logits rounded to float32, every step in float32 (7 digits);"
        " a loss below 6e-8 rounds to 0",
    }
    return FrameworkRows(
        name=f"PyTorch {bits}",
        function=f"torch.nn.functional.cross_entropy ({bits})",
        note=notes[dtype],
        loss=np.asarray(loss, dtype=np.float64),
        weight=weight,
        exact=data.exact_torch,
        mean_note="mean divides by the sum of w[label] (soft targets: by N)",
        dtype=bits,
    )


def _keras_from_logits(data: _Input, sparse: bool) -> FrameworkRows:
    # tf.nn.(sparse_)softmax_cross_entropy_with_logits in float32 (Keras's floatx):
    # sum_k t_k (log sum exp(x - m) - (x_k - m)).
    x = data.y.astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        shifted = x - x.max(axis=-1, keepdims=True)
        lse = np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        if sparse:
            assert data.labels is not None
            loss = _pick(lse - shifted, data.labels)
        else:
            t = data.target().astype(np.float32)
            loss = (t * (lse - shifted)).sum(axis=-1)
    sw = data.sample_weight()
    name = "SparseCategoricalCrossentropy" if sparse else "CategoricalCrossentropy"
    return FrameworkRows(
        name=f"Keras {'sparse' if sparse else 'categorical'}, logits",
        function=f"keras.losses.{name}(from_logits=True)",
        note="float32; log sum exp(x - m) without log1p",
        loss=np.asarray(loss, dtype=np.float64) * sw,
        weight=np.ones(data.n),
        exact=data.exact_plain * sw,
        mean_note="the mean divides by N, also with sample weights",
        dtype="float32",
    )


def _keras_probabilities(data: _Input, sparse: bool) -> FrameworkRows:
    # From a softmax layer's float32 output: renormalise, clip to [1e-7, 1 - 1e-7], log.
    q = textbook_softmax(data.y, np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = q / q.sum(axis=-1, keepdims=True)
        eps = np.float32(KERAS_EPSILON)
        q = np.clip(q, eps, np.float32(1) - eps)
        t = data.target().astype(np.float32)
        loss = -(t * np.log(q)).sum(axis=-1)
    sw = data.sample_weight()
    name = "SparseCategoricalCrossentropy" if sparse else "CategoricalCrossentropy"
    return FrameworkRows(
        name=f"Keras {'sparse' if sparse else 'categorical'}, probabilities",
        function=f"keras.losses.{name}(from_logits=False)",
        note="softmax output clipped to [1e-7, 1 - 1e-7]: loss between 1.2e-7 and 16.12",
        loss=np.asarray(loss, dtype=np.float64) * sw,
        weight=np.ones(data.n),
        exact=data.exact_plain * sw,
        mean_note="the mean divides by N, also with sample weights",
        dtype="float32",
    )


def _optax(data: _Input) -> FrameworkRows:
    x = data.y.astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if data.labels is not None and not data.eps:
            # softmax_cross_entropy_with_integer_labels: log_normalizers - label_logits.
            shifted = x - x.max(axis=-1, keepdims=True)
            lse = np.log(np.exp(shifted).sum(axis=-1))
            loss = lse - _pick(shifted, data.labels)
            function = "optax.softmax_cross_entropy_with_integer_labels"
        else:
            # softmax_cross_entropy(logits, optax.smooth_labels(onehot, eps)).
            lq = textbook_log_softmax(data.y, np.float32)
            loss = _product_sum(data.target().astype(np.float32), lq)
            function = "optax.softmax_cross_entropy"
    return FrameworkRows(
        name="optax (JAX)",
        function=function,
        note="float32 (JAX's default); no reduction, no class weights: jnp.mean of rows",
        loss=np.asarray(loss, dtype=np.float64),
        weight=np.ones(data.n),
        exact=data.exact_plain,
        dtype="float32",
    )


def _sklearn(data: _Input) -> FrameworkRows:
    assert data.labels is not None
    q = textbook_softmax(data.y, np.float64)
    eps = np.finfo(np.float64).eps
    with np.errstate(divide="ignore"):
        loss = -np.log(np.clip(_pick(q, data.labels), eps, 1 - eps))
    unsmoothed = row_losses(data.y, data.labels).loss
    sw = data.sample_weight()
    return FrameworkRows(
        name="scikit-learn",
        function="sklearn.metrics.log_loss",
        note="probabilities clipped to [2.2e-16, 1 - 2.2e-16]: loss between 2.2e-16 and 36.04"
        + ("; no label smoothing" if data.eps else ""),
        loss=loss * sw,
        weight=sw,
        exact=unsmoothed * sw,
        mean_note="sample_weight=w[label]: the mean divides by their sum",
    )


def _scipy(data: _Input) -> FrameworkRows:
    assert data.labels is not None
    y = data.y
    # scipy.special.logsumexp (SciPy 1.15+): the max terms apart, log1p of the rest.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        a_max = y.max(axis=-1, keepdims=True)
        at_max = y == a_max
        count = at_max.sum(axis=-1, keepdims=True).astype(np.float64)
        rest = np.where(at_max, -np.inf, y)
        s = np.exp(rest - a_max).sum(axis=-1, keepdims=True) / count
        lse = (np.log1p(s) + np.log(count) + a_max)[:, 0]
        loss = lse - _pick(y, data.labels)
    plain = row_losses(data.y, data.labels).loss
    return FrameworkRows(
        name="SciPy",
        function="scipy.special.logsumexp",
        note="logsumexp(y) - y[label]: the subtraction loses digits when |m| >> loss"
        + ("; no weights, no smoothing" if data.eps or data.weights is not None else ""),
        loss=np.asarray(loss, dtype=np.float64),
        weight=np.ones(data.n),
        exact=plain,
    )


def _fairseq(data: _Input) -> FrameworkRows:
    assert data.labels is not None
    k = data.k
    lq = textbook_log_softmax(data.y, np.float64)
    eps_i = data.eps / (k - 1)
    with np.errstate(invalid="ignore"):
        nll = -_pick(lq, data.labels)
        smooth = -lq.sum(axis=-1)
        loss = (1.0 - data.eps - eps_i) * nll + eps_i * smooth
    # Exact: the soft target (1 - eps) on the label and eps / (K - 1) on the others.
    target = np.full((data.n, k), eps_i)
    target[np.arange(data.n), data.labels] = 1.0 - data.eps
    exact = row_losses(data.y, targets=target, check=False).loss
    return FrameworkRows(
        name="eps/(K-1) smoothing",
        function="fairseq label_smoothed_nll_loss",
        note="smoothing spreads eps over the K-1 other classes (PyTorch: eps/K over all K)",
        loss=np.asarray(loss, dtype=np.float64),
        weight=np.ones(data.n),
        exact=exact,
    )


def framework_rows(
    logits: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    targets: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
) -> list[FrameworkRows]:
    """Each library's per-row values for a batch of logits ``(N, K)``, in nats.

    Parameters are those of :func:`~xentcli.core.cross_entropy` (rows with an ignored
    label are left out by the caller). The logits are divided by *temperature* first
    (no library has one). Conventions that do not apply are left out: integer-label
    functions with soft targets, the eps/(K-1) convention without smoothing.
    """
    y = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    if temperature != 1.0:
        with np.errstate(over="ignore"):
            y = y / temperature
    lab = None if labels is None else np.atleast_1d(np.asarray(labels, dtype=np.int64))
    t = None if targets is None else np.atleast_2d(np.asarray(targets, dtype=np.float64))
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    exact = row_losses(y, lab, targets=t, weights=w, label_smoothing=label_smoothing)
    plain = row_losses(y, lab, targets=t, label_smoothing=label_smoothing).loss
    data = _Input(y, lab, t, w, float(label_smoothing), exact.loss, exact.weight, plain)
    makers: list[Callable[[], FrameworkRows]] = [
        lambda: _torch(data, np.float64),
        lambda: _torch(data, np.float32),
        lambda: _keras_from_logits(data, sparse=False),
        lambda: _keras_probabilities(data, sparse=False),
    ]
    if lab is not None and not label_smoothing:
        makers += [
            lambda: _keras_from_logits(data, sparse=True),
            lambda: _keras_probabilities(data, sparse=True),
        ]
    makers.append(lambda: _optax(data))
    if lab is not None:
        makers += [lambda: _sklearn(data), lambda: _scipy(data)]
        if label_smoothing and data.k > 1:
            makers.append(lambda: _fairseq(data))
    return [make() for make in makers]
