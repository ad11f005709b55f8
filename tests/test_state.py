"""Saved states (``xent batch --save-state``) and ``xent merge``.

The oracle for a merge is one ``xent batch`` (or one accumulator) over all the inputs,
whose figures test_accumulator/test_cli_batch check against PyTorch and mpmath; the mean is
also checked here against torch's float64 cross_entropy within the kernel's ulp bound.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli_batch import run

from xentcli import BatchAccumulator, BatchOptions, StateError
from xentcli.batch import state as state_module
from xentcli.batch import state_file
from xentcli.batch.reader import Chunk
from xentcli.errors import DataError


def write_csv(path: Path, logits: np.ndarray, labels: np.ndarray) -> Path:
    k = logits.shape[1]
    lines = [",".join([*(f"l{c}" for c in range(k)), "label"])]
    lines += [
        ",".join([*(repr(float(v)) for v in row), str(int(label))])
        for row, label in zip(logits, labels, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def shards(
    tmp_path: Path, sizes=(300, 1, 200, 50), k=4, seed=0, ignored=True, mask=True
) -> list[Path]:
    rng = np.random.default_rng(seed)
    out = []
    for i, n in enumerate(sizes):
        logits = rng.normal(scale=3.0, size=(n, k))
        labels = rng.integers(0, k, n)
        masked = rng.random((n, k)) < 0.05  # masked classes, never the true one
        masked[np.arange(n), labels] = False
        if mask:  # (label smoothing gives a masked class an infinite loss)
            logits[masked] = -np.inf
        if ignored:
            labels[rng.random(n) < 0.1] = -100
        out.append(write_csv(tmp_path / f"shard{i}.csv", logits, labels))
    return out


OPTION_SETS = [
    [],
    ["--ignore-index", "-100", "--weights", "1,2,0.5,3", "--label-smoothing", "0.1"],
    ["--ignore-index", "-100", "--temperature", "2.5", "--base", "2", "--reduction", "sum"],
    ["--classes", "a,b,c,d", "--worst", "3", "--base", "10"],
]


@pytest.mark.parametrize("options", OPTION_SETS)
def test_merge_of_shard_states_is_one_batch_run(tmp_path, options):
    files = shards(
        tmp_path, ignored="--ignore-index" in options, mask="--label-smoothing" not in options
    )
    if "--classes" in options:  # labels become names
        for f in files:
            text = f.read_text().splitlines()
            body = [
                ",".join([*ln.split(",")[:-1], "abcd"[int(ln.split(",")[-1])]]) for ln in text[1:]
            ]
            f.write_text("\n".join([text[0], *body]) + "\n")
    states = []
    for f in files:
        out = run(["batch", str(f), *options, "--save-state", str(f) + ".state", "--format", "csv"])
        assert out.code == 0, out.stderr
        states.append(str(f) + ".state")
    whole = run(["batch", *map(str, files), *options, "--format", "json"])
    assert whole.code == 0, whole.stderr
    merged = run(["merge", *states, "--format", "json"])
    assert merged.code == 0, merged.stderr
    assert merged.stdout == whole.stdout  # every figure, to the last bit
    assert math.isfinite(json.loads(whole.stdout)["loss"])
    # A state of merged states merges again to the same report (associativity on disk).
    left = run(["merge", *states[:2], "--save-state", str(tmp_path / "left.state")])
    assert left.code == 0, left.stderr
    again = run(["merge", str(tmp_path / "left.state"), *states[2:], "--format", "json"])
    assert again.stdout == whole.stdout
    for fmt in ("csv", "table"):
        a = run(["merge", *states, "--format", fmt])
        b = run(["batch", *map(str, files), *options, "--format", fmt])
        # Only xent batch knows the column options that xent compute --from would need.
        study = "\nStudy the worst row step by step: xent compute --from "
        merged_text, batch_text = a.stdout, b.stdout.split(study)[0]
        if fmt == "table":  # the title says which command made the report
            title = f"xent merge of {len(states)} states: "
            assert merged_text.startswith(title), merged_text
            assert batch_text.startswith("xent batch: ")
            merged_text = merged_text.replace(title, "xent batch: ", 1)
        assert merged_text == batch_text


def test_merged_mean_agrees_with_torch(tmp_path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    parts = [(rng.normal(size=(n, 5)) * 4, rng.integers(0, 5, n)) for n in (100, 7, 250)]
    accs = []
    for logits, labels in parts:
        acc = BatchAccumulator(5)
        acc.update(logits, labels)
        accs.append(state_file.loads(state_file.dumps(acc)))
    merged = accs[0]
    for acc in accs[1:]:
        merged.merge(acc)
    logits = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    expected = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits), torch.from_numpy(labels)
    ).item()
    assert math.isclose(merged.summary().loss, expected, rel_tol=4e-15)
    assert merged.summary().rows == 357


# ------------------------------------------------------------- algebra (hypothesis)
def _figures(acc: BatchAccumulator) -> tuple:
    s = acc.summary()
    return (
        s.loss,
        s.loss_sum,
        s.weight_sum,
        s.accuracy,
        s.rows,
        s.rows_counted,
        s.rows_ignored,
        tuple(s.quantiles.items()),
        s.histogram,
        s.per_class,
        tuple(w.loss for w in s.worst),  # which of tied rows is shown follows the order
    )


def _merge_tree(parts: list, rnd, keep_order: bool) -> BatchAccumulator:
    """Merge copies of *parts* along a random tree (in a random order unless *keep_order*)."""
    parts = [state_file.loads(state_file.dumps(p)) for p in parts]
    if not keep_order:
        rnd.shuffle(parts)
    while len(parts) > 1:
        i = rnd.randrange(len(parts) - 1)
        left, right = parts[i], parts.pop(i + 1)
        if not keep_order and rnd.random() < 0.5:
            left, right = right, left
        left.merge(right)
        parts[i] = left
    return parts[0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(0, 60), min_size=1, max_size=6),
    st.sampled_from([None, (1.0, 0.5, 2.0)]),
    st.randoms(use_true_random=False),
)
def test_merging_is_associative_and_commutative(seed, sizes, weights, rnd):
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    logits = rng.normal(scale=5.0, size=(n, 3)).round(rng.integers(0, 3))  # ties too
    labels = rng.integers(0, 3, n)
    options = BatchOptions(weights=weights, worst=4, label_smoothing=0.05)
    whole = BatchAccumulator(3, options)
    whole.update(logits, labels)
    # Each part is its own source; its rows keep their global row numbers as lines.
    parts = []
    start = 0
    for size in sizes:
        acc = BatchAccumulator(3, options)
        if size:
            acc.add(_chunk(logits, labels, start, start + size))
        start += size
        parts.append(state_file.loads(state_file.dumps(acc)))
    # Any grouping (associative) and any order (commutative): the same figures.
    assert _figures(_merge_tree(parts, rnd, keep_order=False)) == _figures(whole)
    # In input order, the very same worst rows, ties broken by input order.
    in_order = _merge_tree(parts, rnd, keep_order=True).summary()
    assert [(w.line, w.loss, w.probability) for w in in_order.worst] == [
        (w.line, w.loss, w.probability) for w in whole.summary().worst
    ]


def _chunk(logits, labels, start, stop) -> Chunk:
    return Chunk(
        "<arrays>",
        logits[start:stop],
        labels[start:stop],
        None,
        np.arange(start + 1, stop + 1, dtype=np.int64),
    )


def test_parts_of_a_file_join_with_true_line_numbers():
    """Byte-range parts number lines from their range's start; joining shifts them."""
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(30, 3))
    labels = rng.integers(0, 3, 30)
    lines = np.arange(2, 32)  # header on line 1
    whole = BatchAccumulator(3, BatchOptions(worst=30))
    whole.add(Chunk("f.csv", logits, labels, None, lines))
    whole.add_skipped("f.csv", 0)
    cuts = [0, 9, 10, 24, 30]
    parts = []
    for a, b in itertools.pairwise(cuts):
        acc = BatchAccumulator(3, BatchOptions(worst=30))
        first = 0 if a == 0 else a + 1  # newlines before the part (header included)
        acc.start_file("f.csv", part=(first * 10, (b + 1) * 10))
        acc.add(Chunk("f.csv", logits[a:b], labels[a:b], None, lines[a:b] - first))
        acc.end_part(b + 1 - first)
        parts.append(state_file.loads(state_file.dumps(acc)))
    for order in (parts, parts[::-1]):
        merged = state_file.loads(state_file.dumps(order[0]))
        for part in order[1:]:
            merged.merge(state_file.loads(state_file.dumps(part)))
        got, want = merged.summary(), whole.summary()
        assert len(got.files) == 1
        assert got.files[0].loss == want.files[0].loss
        assert got.worst == want.worst
        assert got.loss == want.loss


# ----------------------------------------------------------------- what must match
def _state(tmp_path: Path, name: str, *options: str) -> str:
    f = shards(tmp_path, sizes=(20,))[0]
    out = run(
        ["batch", str(f), "--ignore-index", "-100", *options, "--save-state", str(tmp_path / name)]
    )
    assert out.code == 0, out.stderr
    return str(tmp_path / name)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--temperature", "2"], "option temperature: 1.0 here, 2.0 in the other state"),
        (["--weights", "1,1,1,2"], "option weights"),
        (["--label-smoothing", "0.1"], "option label_smoothing"),
        (["--base", "2"], "option base"),
        (["--worst", "2"], "option worst"),
        (["--classes", "a,b,c,d"], "option class_names"),
    ],
)
def test_states_made_with_other_options_do_not_merge(tmp_path, options, named):
    a = _state(tmp_path, "a.state")
    if "--classes" in options:
        f = tmp_path / "shard0.csv"
        f.write_text(
            f.read_text()
            .replace(",0\n", ",a\n")
            .replace(",1\n", ",b\n")
            .replace(",2\n", ",c\n")
            .replace(",3\n", ",d\n")
        )
        out = run(
            [
                "batch",
                str(f),
                "--ignore-index",
                "-100",
                *options,
                "--save-state",
                str(tmp_path / "b.state"),
            ]
        )
        assert out.code == 0, out.stderr
        b = str(tmp_path / "b.state")
    else:
        b = _state(tmp_path, "b.state", *options)
    out = run(["merge", a, b])
    assert out.code == 1
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1
    assert out.stderr.startswith(f"Error: {b}: does not merge with {a}: ")
    assert named in out.stderr


def test_other_number_of_classes_or_kind_of_scores_does_not_merge(tmp_path):
    a = BatchAccumulator(3)
    a.update([[1.0, 2.0, 3.0]], [0])
    b = BatchAccumulator(4)
    b.update([[1.0, 2.0, 3.0, 4.0]], [0])
    with pytest.raises(StateError, match="number of classes: 3 here, 4"):
        a.merge(b)
    c = BatchAccumulator(3)
    c.update([[1.0, 2.0, 3.0]], targets=[[0.5, 0.5, 0.0]])
    with pytest.raises(StateError, match="kind of scores: labels here, soft targets"):
        a.merge(c)


def test_other_version_is_refused(tmp_path):
    a = _state(tmp_path, "a.state")
    data = json.loads(Path(a).read_text())
    data["version"] = 2
    Path(a).write_text(json.dumps(data))
    out = run(["merge", a])
    assert out.code == 1
    assert out.stderr == f"Error: {a}: state format version 2; this xent reads version 1\n"


def test_save_state_is_atomic_and_not_written_on_failure(tmp_path):
    good, bad = shards(tmp_path, sizes=(10, 10))
    bad.write_text(bad.read_text() + "1,2,x,4,0\n")
    target = tmp_path / "run.state"
    target.write_text("previous")
    out = run(["batch", str(good), str(bad), "--ignore-index", "-100", "--save-state", str(target)])
    assert out.code == 1
    assert "shard1.csv:12:3: " in out.stderr
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.state", "shard0.csv", "shard1.csv"]
    out = run(["batch", str(good), "--save-state", str(good)])
    assert out.code == 2
    assert "would destroy the data" in out.stderr


# ---------------------------------------------------- damaged and crafted states
def _valid_state() -> dict:
    acc = BatchAccumulator(3, BatchOptions(worst=2, class_names=("x", "y", "z")))
    acc.update([[1.0, 2.0, -np.inf], [0.5, 0.0, 9.0], [3.0, 1.0, 2.0]], [0, 1, 2])
    acc.add_skipped("<arrays>", 1, [DataError("<arrays>", 9, 2, "not a number", "q")])
    return json.loads(state_file.dumps(acc))


def _set(data: dict, path: tuple, value) -> dict:
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


INFERRED = {
    "label_column": "label",
    "label_guessed": "the last column",
    "index_column": None,
    "class_names_from_header": False,
}

CRAFTED = [
    (("num_classes",), 10**12),
    (("num_classes",), 0),
    (("num_classes",), "3"),
    (("num_classes",), True),
    (("class_rows",), [1] * 10**5),
    (("class_rows",), [1, 1]),
    (("class_rows",), [1, -1, 1]),
    (("class_correct",), [5, 5, 5]),
    (("components", "class_sums", "sums", 0), "0x" + "f" * 5000),
    (("components", "class_sums", "sums", 0), "12"),
    (("components", "class_sums", "sums", 0), "0x1p99999"),
    (("components", "class_sums", "sums", 0), "0x1p"),
    (("components", "class_sums", "sums", 0), "0x1p0"),
    (("components", "class_sums", "sums", 0), 12),
    (("components", "class_sums", "special", 0), "0x1.0p+0"),
    (("components", "class_sums", "groups"), 10**9),
    (("components", "sketch", "buckets"), [[10**9, 1]]),
    (("components", "sketch", "buckets"), [[5, 1], [5, 1]]),
    (("components", "sketch", "buckets"), [[5, 10**20]]),
    (("components", "sketch", "count"), 10**6),
    (("components", "sketch", "min"), "nan"),
    (("components", "sketch", "max"), 1.5),
    (("options", "temperature"), 0),
    (("options", "temperature"), -1.0),
    (("options", "label_smoothing"), 1.5),
    (("components", "sketch", "values"), ["0x1.0p+0"]),
    (("components", "sketch", "values"), "many"),
    (("components", "sketch", "values"), ["0x1.0p+0"] * 3),
    (("components", "sketch", "values"), ["-0x1.0p+0"] * 3),
    (("options", "weights"), [1.0, 2.0]),
    (("options", "weights"), [1.0, -2.0, 1.0]),
    (("options", "class_names"), ["x", "y", 3]),
    (("options", "base"), "3"),
    (("options", "worst"), 10**9),
    (("options", "novel_option"), 1),
    (("files", 0, "part"), [10, 5]),
    (("files", 0, "rows"), 10**30),
    (("files", 0, "counted"), 99),
    (("files", 0, "sum", "count"), -1),
    (("files", 0, "errors"), [{"line": 1, "column": 0, "reason": "x"}] * 6),
    (("files", 0, "path"), "p" * 100000),
    (("worst", 0, "file"), 7),
    (("worst", 0, "label"), 3),
    (("worst", 0, "label"), "w"),
    (("worst", 0, "probability"), "0x1.8000000000000p+0"),
    (("worst", 0, "loss"), "-inf"),
    (("worst",), [{}] * 3),
    (("inputs", "columns"), "label"),
    (("inputs", "columns"), {"label_column": "y"}),
    (("inputs", "columns"), {**INFERRED, "label_column": 3}),
    (("inputs", "columns"), {**INFERRED, "label_guessed": "by a hunch"}),
    (("inputs", "columns"), {**INFERRED, "class_names_from_header": "yes"}),
    (("inputs", "columns"), {**INFERRED, "extra": 1}),
    (("soft_targets",), "no"),
    (("format",), "something-else"),
    (("extra",), 1),
]


@pytest.mark.parametrize(
    ("path", "value"), CRAFTED, ids=[".".join(map(str, p)) for p, _ in CRAFTED]
)
def test_crafted_states_are_refused_with_the_field_named(path, value):
    data = _set(_valid_state(), path, value)
    with pytest.raises(StateError):
        state_file.loads(json.dumps(data))


def test_a_file_over_the_size_limit_is_refused_before_parsing(monkeypatch):
    text = json.dumps(_valid_state())
    monkeypatch.setattr(state_module, "MAX_STATE_BYTES", len(text) - 1)
    with pytest.raises(StateError, match="larger than"):
        state_file.loads(text)


def test_exact_sums_travel_compactly_and_exactly():
    acc = BatchAccumulator(3)
    acc.update([[1.0, 2.0, 3.0], [0.5, 0.25, 1e-300]], [0, 2])
    data = json.loads(state_file.dumps(acc))
    sums = data["components"]["class_sums"]["sums"]
    assert all(len(s) < 200 for s in sums)  # not the 280 digits of the plain integer
    again = state_file.loads(json.dumps(data))
    assert again.class_sums.exact(2) == acc.class_sums.exact(2)
    assert again.class_sums.exact(0) == acc.class_sums.exact(0)


def test_the_inferred_columns_travel_and_are_optional():
    data = _valid_state()
    data["inputs"]["columns"] = dict(INFERRED)
    acc = state_file.loads(json.dumps(data))
    assert acc.summary().to_json()["inferred"] == INFERRED
    del data["inputs"]["columns"]  # a state written before the field: none
    assert state_file.loads(json.dumps(data)).summary().to_json()["inferred"] is None


def test_a_valid_state_round_trips_exactly():
    text = json.dumps(_valid_state())
    acc = state_file.loads(text)
    assert json.loads(state_file.dumps(acc)) == json.loads(text)
    summary = acc.summary()
    assert summary.rows_skipped == 1
    assert str(summary.skipped[0]) == "<arrays>:9:2: not a number ('q')"


def test_every_truncation_and_many_damaged_bytes_are_errors():
    text = json.dumps(_valid_state()).encode()
    for cut in range(0, len(text), 7):
        with pytest.raises(StateError):
            state_file.loads(text[:cut])
    rng = random.Random(11)
    for _ in range(300):
        damaged = bytearray(text)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            acc = state_file.loads(bytes(damaged))
        except StateError:
            continue
        acc.summary()  # a damage that stays valid still gives a report, never a crash


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100000 + "]" * 100000,
        '{"a":' * 50000 + "1" + "}" * 50000,
        "NaN",
        '{"format": "xent-state", "version": 1, "num_classes": Infinity}',
        '{"format": "xent-state", "version": 1, "num_classes": 1e999}',
        '{"format": "xent-state", "format": "xent-state"}',
        "9" * 5000,
        "",
        "\xff\xfe",
        "[]",
        "null",
    ],
)
def test_hostile_json_is_an_error(text):
    with pytest.raises(StateError):
        state_file.loads(text.encode("latin-1") if text == "\xff\xfe" else text)


def test_merge_cli_damaged_file_is_one_line(tmp_path):
    a = _state(tmp_path, "a.state")
    text = Path(a).read_text()
    Path(a).write_text(text[: len(text) // 2])
    out = run(["merge", a])
    assert out.code == 1
    assert out.stderr.startswith(f"Error: {a}: not a state (truncated or damaged JSON")
    assert out.stderr.count("\n") == 1
    missing = run(["merge", str(tmp_path / "nope.state")])
    assert missing.code == 1
    assert (
        missing.stderr
        == f"Error: {tmp_path / 'nope.state'}: cannot read: No such file or directory\n"
    )


def test_skipped_rows_of_a_parquet_file_travel_with_their_column_name(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)
    logits = rng.normal(size=(50, 3))
    logits[7, 1] = np.nan
    labels = rng.integers(0, 3, 50)
    path = tmp_path / "q.parquet"
    columns = {"a": logits[:, 0], "b": logits[:, 1], "c": logits[:, 2], "label": labels}
    pq.write_table(pa.table(columns), path, row_group_size=20)
    saved = tmp_path / "q.state"
    args = [str(path), "--on-error", "skip", "--format", "json"]
    local = run(["batch", *args, "--save-state", str(saved)])
    assert local.code == 0, local.stderr
    merged = run(["merge", str(saved), "--format", "json"])
    assert merged.stdout == local.stdout
    skipped = json.loads(merged.stdout)["skipped"]
    assert [(s["line"], s["column"]) for s in skipped] == [(8, "b")]
    assert str(state_file.read_state(str(saved)).summary().skipped[0]).startswith(
        f"{path}:row 8:b: "
    )
