"""The streaming Poisson bootstrap: percentile intervals for every figure, ECE included.

Each row gets, for each of ``B`` replicates, a Poisson(1) weight that depends only on
``(seed, file, row number)``: numpy's PCG64 is seeded by the seed and a hash of the
file's name (BLAKE2b, 64 bits), and row ``r`` reads its weights from the 64-bit word
``r * ceil(B / 4)`` on (4 weights per word, each from 16 random bits through a table of
the Poisson(1) quantiles at ``(u + 1/2) / 2**16``: probabilities quantized to 2**-16),
reached with PCG64's ``advance``. So the replicates are the same whatever the chunking,
the threads or the order of the files.

Per replicate the state keeps ``sum_rows weight * value`` for the row count, the loss and
its weight, the Brier term, the hits, and per equal-width calibration bin the rows, the
right rows and the confidences. Values are first rounded to a multiple of 2**-40 (an
error below 2**-41 per row, far below any interval's printed digits) and cut into
integer pieces (the low 40 bits and the rest), so the weighted sums of at most
``_EXACT_ROWS`` rows are exact float64 matrix products (every partial sum stays below
2**53), added into int64 totals: the same bits whatever the order. The state holds each
sum as three canonical 20-bit pieces (the last one unbounded). Losses (or class
weights) of 2**20 or more, and infinite losses, make a replicate that draws them
infinite.

Each figure's interval is the percentiles ``(1 - level) / 2`` and ``(1 + level) / 2`` of
its ``B`` replicate values, each at the position ``(B + 1) p`` of the ordered values,
linear in between (numpy's ``method="weibull"``): numpy's default position ``(B - 1) p``
makes the 95 % interval of 200 replicates cover about 94 % (docs/metrics.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from xentcli import core
from xentcli.batch.metrics._rows import MetricRows
from xentcli.batch.metrics._state import counts_from_state, counts_to_state

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAX_REPLICATES = 10_000
_SCALE = 40  # values are rounded to multiples of 2**-40
_PIECE = 20  # bits per piece of the state's sums
_MASK = (1 << _PIECE) - 1
_LOW = (1 << _SCALE) - 1  # a value's low piece in the products: its bits 0-39
_BIG = float(2**20)  # losses at or above this make the replicate infinite
_SUB_WEIGHTS = 1024 * 200  # weights drawn at once: 1024 rows at 200 replicates (fits
# the cache: 10 % less time than 2048 rows, 20 % less than 4096), fewer rows at more
# replicates (their memory bounded: 10,000 replicates took 655 MB with 2048 rows)
_EXACT_ROWS = 1 << 10  # rows summed in floats: 8 (the largest weight) * 2**40 * 2**10
# = 2**53, so every partial sum of a product is exact
_ONE_THREAD = 1 << 18  # multiply-adds of a product that OpenBLAS keeps on one thread


def _poisson_table() -> npt.NDArray[np.uint8]:
    """Poisson(1) quantiles at ``(u + 1/2) / 2**16`` for every 16-bit ``u``."""
    cdf = np.cumsum([math.exp(-1.0) / math.factorial(j) for j in range(20)])
    u = (np.arange(1 << 16) + 0.5) / (1 << 16)
    return np.searchsorted(cdf, u, side="right").astype(np.uint8)


_TABLE = _poisson_table()
#: the table's steps: ``_TABLE[u]`` is the number of them at or below ``u``
_STEPS = np.searchsorted(_TABLE, np.arange(1, int(_TABLE.max()) + 1)).tolist()


def _table_weights(draws: npt.NDArray[np.uint16]) -> FloatArray:
    """``_TABLE[draws]`` as floats, counted as the steps each draw reaches: 8 compares
    of 16-bit integers cost less than one table look-up (which widens every index to
    64 bits): 0.43 ms against 1.04 for 2048 rows of 200 draws."""
    counts = np.greater_equal(draws, _STEPS[0]).view(np.uint8)
    reached = np.empty_like(counts)
    for step in _STEPS[1:]:
        np.greater_equal(draws, step, out=reached.view(np.bool_))
        counts += reached
    return counts.astype(np.float64)


def file_key(path: str) -> int:
    """64 bits of BLAKE2b of the file's name: the file's part of the generator key."""
    import hashlib  # here: only the bootstrap needs it (OpenSSL's import is slow)

    return int.from_bytes(hashlib.blake2b(path.encode(), digest_size=8).digest(), "little")


class _Draws:
    """The 16-bit draws of rows of one file: row ``r`` reads ``ceil(B / 4)`` 64-bit words
    of PCG64 seeded by the seed and the file, from word ``r * ceil(B / 4)`` on (one
    generator, set back to its start and jumped ahead with ``advance`` for each run of
    rows: making one costs more than drawing 2048 rows). PCG64 rather than the
    counter-based Philox: it draws the same bits in half the time (0.18 against 0.35 ms
    for 1024 rows of 200 draws), and ``advance`` makes any row's draws as direct to
    reach as a counter does."""

    def __init__(self, seed: int, path: str, replicates: int) -> None:
        self.replicates = replicates
        self.words = -(-replicates // 4)
        entropy = [seed & ((1 << 64) - 1), file_key(path)]
        self.generator = np.random.PCG64(np.random.SeedSequence(entropy))
        self.start = self.generator.state

    def __call__(self, lines: IntArray) -> npt.NDArray[np.uint16]:
        """The (n, B) draws of the rows numbered *lines*."""
        if lines.size == 0:
            return np.zeros((0, self.replicates), dtype=np.uint16)
        low, high = int(lines.min()), int(lines.max())
        self.generator.state = self.start
        self.generator.advance(low * self.words)
        raw = self.generator.random_raw((high - low + 1) * self.words).reshape(-1, self.words)
        if not (np.diff(lines) == 1).all():  # consecutive rows (the usual chunk): no copy
            raw = raw[lines - low]
        return raw.astype("<u8", copy=False).view("<u2")[:, : self.replicates]


def poisson_draws(seed: int, path: str, lines: IntArray, replicates: int) -> npt.NDArray[np.uint16]:
    """The (n, B) 16-bit draws behind :func:`poisson_weights` (``_TABLE[draws]``)."""
    return _Draws(seed, path, replicates)(lines)


def poisson_weights(seed: int, path: str, lines: IntArray, replicates: int) -> FloatArray:
    """The (n, B) bootstrap weights of the rows numbered *lines* of file *path*."""
    return _TABLE[poisson_draws(seed, path, lines, replicates)].astype(np.float64)


def _put_pieces(out: FloatArray, values: FloatArray) -> None:
    """Write into the (n, 2) *out* the integer pieces (as floats) of each value rounded
    to a multiple of 2**-40: its bits 0-39 and 40 on."""
    fixed = np.rint(np.ldexp(values, _SCALE)).astype(np.int64)
    out[:, 0] = fixed & _LOW
    out[:, 1] = fixed >> _SCALE


def _carry(pieces: IntArray) -> None:
    """Make the sums held as 20-bit pieces along the last axis of *pieces* (three:
    ``p0 + p1 2**20 + p2 2**40``) canonical in place: ``p0`` and ``p1`` in [0, 2**20).
    The same integers then have the same pieces whatever the grouping of their rows."""
    carry = pieces[..., 0] >> _PIECE
    pieces[..., 0] &= _MASK
    pieces[..., 1] += carry
    carry = pieces[..., 1] >> _PIECE
    pieces[..., 1] &= _MASK
    pieces[..., 2] += carry


class _Sums:
    """Exact int64 sums of float products' columns: each product's sums (below 2**53)
    are added as their bits 0-19 and 20 on, so no total overflows (2**33 a product)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.low = np.zeros(shape, dtype=np.int64)
        self.high = np.zeros(shape, dtype=np.int64)

    def add(self, sums: FloatArray, at: IntArray | None = None) -> None:
        """Add *sums* (exact integers as floats), or add them at the first-axis
        positions *at* (distinct)."""
        exact = sums.astype(np.int64)
        if at is None:
            self.low += exact & _MASK
            self.high += exact >> _PIECE
        else:
            self.low[at] += exact & _MASK
            self.high[at] += exact >> _PIECE

    def count(self, column: int) -> IntArray:
        """The sums of a column of small integers (0/1 per row)."""
        return self.low[..., column] + (self.high[..., column] << _PIECE)

    def pieces(self, column: int) -> IntArray:
        """The canonical (.., 3) 20-bit pieces of a value cut by :func:`_put_pieces`
        into the columns *column* (bits 0-39) and *column* + 1 (bits 40 on)."""
        out = np.empty((*self.low.shape[:-1], 3), dtype=np.int64)
        out[..., 0] = self.low[..., column]
        out[..., 1] = self.high[..., column]
        out[..., 2] = self.count(column + 1)
        _carry(out)
        return out


@dataclass(frozen=True)
class BootstrapPart:
    """One chunk's sums (:meth:`BootstrapState.part`): ``totals`` as the state's, and
    ``binned[i]`` the sums of bin ``bins[i]``; *key* names the options and the file."""

    key: tuple[Any, ...]
    totals: IntArray
    bins: IntArray
    binned: IntArray


@dataclass(frozen=True)
class BootstrapSummary:
    """Percentile intervals of every figure (None: undefined)."""

    replicates: int
    seed: int
    level: float
    intervals: dict[str, tuple[float, float] | None]

    def to_json(self) -> dict[str, Any]:
        return {
            "replicates": self.replicates,
            "seed": self.seed,
            "level": self.level,
            "method": "Poisson bootstrap, percentile",
            **{name: None if v is None else [v[0], v[1]] for name, v in self.intervals.items()},
        }


class BootstrapState:
    """Per-replicate exact weighted sums (see the module docstring)."""

    #: global columns: each a value per row; the loss, its weight and the Brier term in
    #: 3 pieces, the others 0/1 integers
    def __init__(self, replicates: int, seed: int, ks: tuple[int, ...], bins: int) -> None:
        if not 1 <= replicates <= MAX_REPLICATES:
            raise ValueError(f"bootstrap replicates must be in [1, {MAX_REPLICATES}]")
        self.replicates = replicates
        self.seed = seed
        self.ks = tuple(k for k in ks if k != 1)
        self.bins = bins
        # columns: rows, correct, big, loss(3), weight(3), brier(3), hits per k
        self.columns = 3 + 9 + len(self.ks)
        self.totals = np.zeros((replicates, self.columns), dtype=np.int64)
        # per bin: rows, correct, confidence(3)
        self.binned = np.zeros((bins, replicates, 5), dtype=np.int64)

    def update(self, rows: MetricRows, source: str) -> None:
        """Fold one chunk's rows of file *source* in (their sums made ahead by
        :meth:`part` if *rows* carry them)."""
        part = rows.bootstrap
        if not (isinstance(part, BootstrapPart) and part.key == self._key(source)):
            part = self.part(rows, source)
        if part is not None:
            self.totals += part.totals
            self.binned[part.bins] += part.binned
            self._carry()

    def _key(self, source: str) -> tuple[Any, ...]:
        return (self.replicates, self.seed, self.ks, self.bins, source)

    def part(self, rows: MetricRows, source: str) -> BootstrapPart | None:
        """The sums of one chunk's rows of file *source* (None: no rows), for
        :meth:`update`. It only reads the options: the readers' parsing threads make
        it beside the chunk's other metric rows, so the sums of one chunk overlap the
        parsing of the next.

        The rows are taken ``_SUB_WEIGHTS // B`` (at most ``_EXACT_ROWS``) at a time,
        sorted by calibration bin; each bin's rows make products ``weights.T @ values``
        whose columns are its sums (rows, right rows, confidence) and the global ones
        (loss, Brier, hits): the global sums are the bins' added up, so one pass over the
        weights gives both. The float sums of at most ``_EXACT_ROWS`` rows are exact;
        then they are added into int64 sums. Columns known without a product are left
        out of it: the loss weight when every row's is 1 (its pieces are then (0, 0, 1):
        its sums are the row counts) and the count of too-big losses when there are
        none. Every sum is an exact integer, so the totals are the same bits whatever
        the grouping of the rows.
        """
        n = len(rows)
        if n == 0:
            return None
        loss = rows.loss if rows.loss is not None else np.zeros(n)
        weight = rows.loss_weight if rows.loss_weight is not None else np.ones(n)
        big = ~(loss < _BIG) | ~(weight < _BIG)
        any_big = bool(big.any())
        if any_big:
            loss, weight = np.where(big, 0.0, loss), np.where(big, 0.0, weight)
        unit_weight = bool((weight == 1.0).all())
        # the product's columns: per bin rows, right rows, confidence (its bits 0-39:
        # bit 40 is set only for a confidence that rounds to 1, in the last bin); then
        # loss (2), Brier (2), hits per k, and only if needed: that bit 40, big, weight (2)
        confidence = np.empty((n, 2))
        _put_pieces(confidence, rows.confidence)
        ones = confidence[:, 1]
        any_one = bool(ones.any())
        hits = 7 + len(self.ks)  # the first column after the hits
        width = hits + any_one + any_big + 2 * (not unit_weight)
        values = np.empty((n, width))
        values[:, 0] = 1.0
        values[:, 1] = rows.correct
        values[:, 2] = confidence[:, 0]
        _put_pieces(values[:, 3:5], loss)
        _put_pieces(values[:, 5:7], rows.brier)
        for j, k in enumerate(self.ks):
            values[:, 7 + j] = rows.rank < k
        extra = hits
        if any_one:
            values[:, extra] = ones
            extra += 1
        if any_big:
            values[:, extra] = big
        if not unit_weight:
            _put_pieces(values[:, -2:], weight)
        # Rows per product: OpenBLAS runs a product of at most 2**18 multiply-adds on
        # one thread; past it, its threads spin against the readers' threads (on the
        # loaded 2-core benchmark machine a (2048 x 200) x (2048 x 16) product took
        # 5-7 ms of CPU on two threads, 0.3 ms as 128-row products on one).
        step = max(1, _ONE_THREAD // (self.replicates * width))
        bin_index = np.minimum((rows.confidence * self.bins).astype(np.int64), self.bins - 1)
        total = _Sums((self.replicates, width))
        binned = _Sums((self.bins, self.replicates, 3))
        # Float sums per bin, every column (the global sums are the bins' added up), of at
        # most _EXACT_ROWS rows: then added into the integer sums and cleared. Few rows
        # at once for many replicates, many clears would cost as much as the products.
        floats = np.empty((self.bins, self.replicates, width))
        filled = np.zeros(self.bins, dtype=bool)  # the bins holding sums since the clear
        summed = 0  # the rows in those sums
        seen = np.zeros(self.bins, dtype=bool)

        def clear() -> None:  # a bin's next product is written over its old sums
            used = np.flatnonzero(filled)
            total.add(floats[used].sum(axis=0))
            binned.add(floats[used, :, :3], used)
            filled[used] = False

        draw = _Draws(self.seed, source, self.replicates)
        at_once = min(_EXACT_ROWS, max(1, _SUB_WEIGHTS // self.replicates))
        for start in range(0, n, at_once):
            sub = slice(start, start + at_once)
            index = bin_index[sub]
            if summed + index.size > _EXACT_ROWS:
                clear()
                summed = 0
            summed += index.size
            order = np.argsort(index, kind="stable")
            w = _table_weights(draw(rows.lines[sub])[order])
            v = values[sub][order]
            counts = np.bincount(index, minlength=self.bins)
            present = np.flatnonzero(counts)
            seen[present] = True
            begin = 0
            for b, end in zip(present.tolist(), np.cumsum(counts[present]).tolist(), strict=True):
                cut = min(begin + step, end)
                sums = floats[b]
                if filled[b]:
                    sums += w[begin:cut].T @ v[begin:cut]
                else:  # the bin's first product since the clear: written in place
                    np.matmul(w[begin:cut].T, v[begin:cut], out=sums)
                    filled[b] = True
                for at in range(cut, end, step):
                    stop = min(at + step, end)
                    sums += w[at:stop].T @ v[at:stop]
                begin = end
        clear()
        totals = np.zeros_like(self.totals)
        totals[:, 0] = total.count(0)
        totals[:, 1] = total.count(1)
        totals[:, 3:6] = total.pieces(3)  # loss
        totals[:, 9:12] = total.pieces(5)  # Brier
        for j in range(len(self.ks)):
            totals[:, 12 + j] = total.count(7 + j)
        if any_big:
            totals[:, 2] = total.count(hits + any_one)
        if unit_weight:  # 1 is 2**40: the pieces (0, 0, 1)
            totals[:, 8] = totals[:, 0]
        else:
            totals[:, 6:9] = total.pieces(width - 2)
        present = np.flatnonzero(seen)
        cells = np.zeros((len(present), self.replicates, 5), dtype=np.int64)
        cells[:, :, 0] = binned.count(0)[present]
        cells[:, :, 1] = binned.count(1)[present]
        cells[:, :, 2] = binned.low[present, :, 2]
        cells[:, :, 3] = binned.high[present, :, 2]
        if any_one:  # the confidence's bit 40 (1 from 1 - 2**-41 on: the last bin)
            last = int(np.searchsorted(present, self.bins - 1))
            cells[last, :, 4] = total.count(hits)
        _carry(cells[:, :, 2:])
        return BootstrapPart(self._key(source), totals, present.astype(np.int64), cells)

    def merge(self, other: BootstrapState) -> None:
        """Add everything *other* (same replicates, seed, k and bins) holds."""
        same = (self.replicates, self.seed, self.ks, self.bins)
        if (other.replicates, other.seed, other.ks, other.bins) != same:
            raise ValueError("cannot merge bootstrap states made with other options")
        self.totals += other.totals
        self.binned += other.binned
        self._carry()

    def _carry(self) -> None:
        """Keep every sum's 20-bit pieces canonical (see :func:`_carry`)."""
        for at in (3, 6, 9):  # loss, weight, Brier
            _carry(self.totals[:, at : at + 3])
        _carry(self.binned[:, :, 2:])

    def to_state(self) -> dict[str, Any]:
        """The state as JSON-able data."""
        return {
            "replicates": self.replicates,
            "seed": self.seed,
            "k": list(self.ks),
            "bins": self.bins,
            "totals": counts_to_state(self.totals),
            "binned": counts_to_state(self.binned),
        }

    @classmethod
    def from_state(cls, data: Any, where: str = "bootstrap") -> BootstrapState:
        """A state from :meth:`to_state`'s data, every field checked."""
        keys = ("replicates", "seed", "k", "bins", "totals", "binned")
        fields = core.need_dict(data, where, keys)
        replicates = core.need_int(fields["replicates"], f"{where}.replicates", 1, MAX_REPLICATES)
        seed = core.need_int(fields["seed"], f"{where}.seed", 0, (1 << 64) - 1)
        items = core.need_list(fields["k"], f"{where}.k", max_size=1 << 20)
        ks = tuple(core.need_int(k, f"{where}.k[{i}]", 2) for i, k in enumerate(items))
        bins = core.need_int(fields["bins"], f"{where}.bins", 1, 10_000)
        state = cls(replicates, seed, ks, bins)
        totals = counts_from_state(fields["totals"], f"{where}.totals", state.totals.size)
        binned = counts_from_state(fields["binned"], f"{where}.binned", state.binned.size)
        state.totals[...] = totals.reshape(state.totals.shape)
        state.binned[...] = binned.reshape(state.binned.shape)
        return state

    def names(self) -> list[str]:
        """The figures that get an interval, in report order."""
        return _names(self.ks)

    def replicates_sums(self) -> list[Replicate]:
        """Each replicate's exact integer sums (see :class:`Replicate`)."""
        out = []
        binned = self.binned.transpose(1, 0, 2).tolist()  # (replicate, bin, column)
        one = 1 << _SCALE
        for t, cells in zip(self.totals.tolist(), binned, strict=True):
            gap_sum, worst = 0, 0.0
            for n, right, *confidence in cells:
                if n:
                    gap = abs(_joined(confidence) - right * one)
                    gap_sum += gap
                    worst = max(worst, gap / (n * one))
            out.append(
                Replicate(
                    rows=t[0],
                    correct=t[1],
                    big=t[2],
                    loss=_joined(t[3:6]),
                    weight=_joined(t[6:9]),
                    brier=_joined(t[9:12]),
                    hits=tuple(t[12:]),
                    gap=gap_sum,
                    worst=worst,
                )
            )
        return out

    def summary(
        self, level: float, base: str = "e", sums: list[Replicate] | None = None
    ) -> BootstrapSummary:
        """Percentile intervals at *level* of every figure's replicates (*sums*: this
        state's :meth:`replicates_sums`, if the caller has them).

        Each replicate's figure is a ratio of exact integer sums, rounded once (Python's
        integer division is correctly rounded): the same bits on every machine.
        """
        values: dict[str, list[float]] = {name: [] for name in self.names()}
        for r in self.replicates_sums() if sums is None else sums:
            for name, value in r.figures(self.ks, base).items():
                values[name].append(value)
        return BootstrapSummary(self.replicates, self.seed, level, _percentiles(values, level))


@dataclass(frozen=True)
class Replicate:
    """One replicate's exact sums: weighted rows, right rows, rows of too big a loss,
    the loss and its weight and the Brier term (integers times 2**-40), the top-k hits,
    the equal-width calibration gaps' sum (times 2**-40) and the largest bin gap."""

    rows: int
    correct: int
    big: int
    loss: int
    weight: int
    brier: int
    hits: tuple[int, ...]
    gap: int
    worst: float

    def figures(self, ks: tuple[int, ...], base: str) -> dict[str, float]:
        """The replicate's figures (nan where undefined, inf for an infinite loss)."""
        if self.rows == 0:
            return dict.fromkeys(_names(ks), math.nan)
        if self.big:
            loss = math.inf
        elif self.weight == 0:
            loss = math.nan
        else:
            loss = float(core.to_base(self.loss / self.weight, base))
        one = 1 << _SCALE
        out = {
            "loss": loss,
            "accuracy": self.correct / self.rows,
            "brier": self.brier / (self.rows * one),
            "ece": self.gap / (self.rows * one),
            "mce": self.worst,
        }
        for k, hits in zip(ks, self.hits, strict=True):
            out[f"top_{k}_accuracy"] = hits / self.rows
        return out

    def minus(self, other: Replicate, ks: tuple[int, ...], base: str) -> dict[str, float]:
        """This replicate's figures minus *other*'s, drawn with the same weights on the
        same rows (the paired bootstrap): each difference from the exact sums, rounded
        once (the maximum calibration error: a difference of two floats)."""
        if self.rows == 0 or other.rows == 0:
            return dict.fromkeys(_names(ks), math.nan)
        if self.big or other.big:
            loss = math.nan if self.big and other.big else (math.inf if self.big else -math.inf)
        elif self.weight == 0 or other.weight == 0:
            loss = math.nan
        else:  # same rows, same labels: the weights agree, but do not rely on it
            numerator = self.loss * other.weight - other.loss * self.weight
            loss = float(core.to_base(numerator / (self.weight * other.weight), base))
        one = 1 << _SCALE
        rows = self.rows  # the same rows on both sides
        out = {
            "loss": loss,
            "accuracy": (self.correct - other.correct) / rows,
            "brier": (self.brier - other.brier) / (rows * one),
            "ece": (self.gap - other.gap) / (rows * one),
            "mce": self.worst - other.worst,
        }
        for k, mine, theirs in zip(ks, self.hits, other.hits, strict=True):
            out[f"top_{k}_accuracy"] = (mine - theirs) / rows
        return out


def paired_difference(
    a: BootstrapState,
    b: BootstrapState,
    level: float,
    base: str = "e",
    sums: tuple[list[Replicate], list[Replicate]] | None = None,
) -> BootstrapSummary:
    """Percentile intervals of every figure's difference B - A, replicate by replicate.

    *a* and *b* must have drawn each row's weights from the same key (the same source
    and row numbers for the same rows): then replicate ``r`` of B minus replicate ``r``
    of A is one draw of the paired bootstrap. *sums*: their :meth:`~BootstrapState.
    replicates_sums`, if the caller has them.
    """
    same = (a.replicates, a.seed, a.ks, a.bins)
    if (b.replicates, b.seed, b.ks, b.bins) != same:
        raise ValueError("the paired bootstrap needs two states made with the same options")
    sums_a, sums_b = (a.replicates_sums(), b.replicates_sums()) if sums is None else sums
    values: dict[str, list[float]] = {name: [] for name in a.names()}
    for ra, rb in zip(sums_a, sums_b, strict=True):
        for name, value in rb.minus(ra, a.ks, base).items():
            values[name].append(value)
    return BootstrapSummary(a.replicates, a.seed, level, _percentiles(values, level))


def _names(ks: tuple[int, ...]) -> list[str]:
    return ["loss", "accuracy", "brier", "ece", "mce"] + [f"top_{k}_accuracy" for k in ks]


def _percentiles(
    values: dict[str, list[float]], level: float
) -> dict[str, tuple[float, float] | None]:
    """The ``(1 -+ level) / 2`` percentiles of each figure's replicates, at the position
    ``(B + 1) p`` (None if one is undefined)."""
    low, high = (1 - level) / 2, (1 + level) / 2
    intervals: dict[str, tuple[float, float] | None] = {}
    for name, replicate_values in values.items():
        array = np.asarray(replicate_values)
        if np.isnan(array).any():
            intervals[name] = None
            continue
        with np.errstate(invalid="ignore"):  # inf - inf between infinite replicates
            lo, hi = np.quantile(array, [low, high], method="weibull")
        intervals[name] = (float(lo), float(hi))
    return intervals


def _joined(pieces: list[int]) -> int:
    """The integer ``s0 + s1 2**20 + s2 2**40`` of three pieces' sums (times 2**-40)."""
    return pieces[0] + (pieces[1] << _PIECE) + (pieces[2] << (2 * _PIECE))
