"""The Dask engine on a local cluster of 2 worker processes (one cluster for the module).

The oracle is ``xent batch`` in one process (itself checked against PyTorch and mpmath
in test_accumulator/test_cli_batch): every figure must be the same bits, whatever the parts
(byte ranges of CSV files, Parquet row groups, whole compressed files), their order, or
a worker dying mid-run. A Dask DataFrame's mean is also checked against torch.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("fsspec")

from distributed import Client, LocalCluster
from test_cli_batch import run

from xentcli import BatchAccumulator, BatchOptions
from xentcli import dask as xdask
from xentcli.batch.parts import plan
from xentcli.batch.reader import ReadOptions
from xentcli.errors import XentError

ROOT = Path(__file__).resolve().parent.parent
K = 4
PART = 3000  # bytes per CSV part: each CSV shard is cut into several ranges


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port, never the fixed 8787 another run may hold
            silence_logs=logging.CRITICAL,
            env={"PYTHONPATH": str(ROOT)},
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def _rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    logits = rng.normal(scale=3.0, size=(n, K))
    labels = rng.integers(0, K, n)
    masked = rng.random((n, K)) < 0.05  # masked classes, never the true one
    masked[np.arange(n), labels] = False
    logits[masked] = -np.inf
    labels[rng.random(n) < 0.1] = -100
    return logits, labels


def _csv_text(logits: np.ndarray, labels: np.ndarray, blank_every: int = 0) -> str:
    lines = [",".join([*(f"l{c}" for c in range(K)), "label"])]
    for i, (row, label) in enumerate(zip(logits, labels, strict=True)):
        lines.append(",".join([*(repr(float(v)) for v in row), str(int(label))]))
        if blank_every and i % blank_every == 0:
            lines.append("")  # blank lines count as lines, not rows
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("shards")
    rng = np.random.default_rng(7)
    paths = []
    for i, n in enumerate((120, 45, 200)):
        path = folder / f"s{i}.csv"
        path.write_text(_csv_text(*_rows(rng, n), blank_every=17 if i == 2 else 0))
        paths.append(str(path))
    gz = folder / "s3.csv.gz"
    gz.write_bytes(gzip.compress(_csv_text(*_rows(rng, 60)).encode()))
    paths.append(str(gz))
    logits, labels = _rows(rng, 150)
    table = pa.table({**{f"l{c}": logits[:, c] for c in range(K)}, "label": labels})
    pq.write_table(table, folder / "s4.parquet", row_group_size=40)
    paths.append(str(folder / "s4.parquet"))
    return paths


OPTIONS = ["--ignore-index", "-100", "--weights", "1,2,0.5,3", "--label-smoothing", "0.05"]


def _dask(client, *args: str) -> object:
    address = client.scheduler.address
    return run(
        ["batch", *args, "--engine", "dask", "--scheduler", address, "--part-bytes", str(PART)]
    )


def test_parts_are_byte_ranges_row_groups_and_whole_files(shards):
    parts = plan(shards, ReadOptions(), PART)
    kinds = {path: [p.kind for p in parts if p.path == path] for path in shards}
    assert kinds[shards[0]] == ["bytes"] * 4  # 120 rows of ~85 bytes
    assert kinds[shards[3]] == ["file"]  # compressed: whole
    parquet = [p for p in parts if p.path == shards[4]]
    assert len(parquet) >= 2
    assert {p.kind for p in parquet} == {"rowgroups"}
    assert [g for p in parquet for g in p.row_groups] == [0, 1, 2, 3]  # 4 groups of 40 rows
    assert [p.index for p in parts] == list(range(len(parts)))


def test_dask_gives_the_bits_of_one_process(client, shards):
    local = run(["batch", *shards, *OPTIONS, "--format", "json", "--worst", "8"])
    assert local.code == 0, local.stderr
    on_dask = _dask(client, *shards, *OPTIONS, "--format", "json", "--worst", "8")
    assert on_dask.code == 0, on_dask.stderr
    assert on_dask.stdout == local.stdout
    document = json.loads(on_dask.stdout)
    assert [f["path"] for f in document["files"]] == shards  # one line per file, in order
    table = _dask(client, *shards, *OPTIONS)
    assert table.stdout == run(["batch", *shards, *OPTIONS]).stdout


def test_any_order_of_the_shards(client, shards):
    order = [shards[i] for i in (4, 2, 0, 3, 1)]
    local = run(["batch", *order, "--ignore-index", "-100", "--base", "2", "--format", "json"])
    on_dask = _dask(client, *order, "--ignore-index", "-100", "--base", "2", "--format", "json")
    assert on_dask.stdout == local.stdout
    ordered = json.loads(
        run(["batch", *shards, "--ignore-index", "-100", "--base", "2", "--format", "json"]).stdout
    )
    shuffled = json.loads(on_dask.stdout)
    for key in ("loss", "loss_sum", "weight_sum", "accuracy", "per_class", "loss_quantiles"):
        assert shuffled[key] == ordered[key]


@pytest.fixture(scope="module")
def weighted_shards(tmp_path_factory) -> list[str]:
    """A CSV (cut into byte ranges) and a Parquet file with a sample-weight column and a
    group column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("weighted")
    rng = np.random.default_rng(11)
    logits, labels = _rows(rng, 160)
    weights = np.round(rng.lognormal(size=160), 4)
    groups = rng.choice(["a", "b", "c"], 160)
    lines = _csv_text(logits, labels).splitlines()
    body = [
        f"{line},{w!r},{g}"
        for line, w, g in zip(lines[1:], weights.tolist(), groups.tolist(), strict=True)
    ]
    (folder / "w.csv").write_text("\n".join([lines[0] + ",w,g", *body]) + "\n")
    columns = {f"l{c}": logits[:, c] for c in range(K)}
    table = pa.table({**columns, "label": labels, "w": weights[::-1].copy(), "g": groups})
    pq.write_table(table, folder / "w.parquet", row_group_size=40)
    return [str(folder / "w.csv"), str(folder / "w.parquet")]


def test_dask_carries_the_sample_weights_and_the_groups(client, weighted_shards):
    # (no label smoothing: with masked classes it makes infinite losses, whose first few
    # rows the merged parts do not name as one process does; a separate matter)
    options = ["--ignore-index", "-100", "--weights", "1,2,0.5,3"]
    args = [*weighted_shards, *options, "--weight-column", "w", "--group-by", "g"]
    args += ["--format", "json"]
    local = run(["batch", *args])
    assert local.code == 0, local.stderr
    assert json.loads(local.stdout)["sample_weights"]["column"] == "w"
    assert [g["group"] for g in json.loads(local.stdout)["groups"]] == ["a", "b", "c"]
    on_dask = _dask(client, *args)
    assert on_dask.code == 0, on_dask.stderr
    assert on_dask.stdout == local.stdout


def test_saved_dask_state_merges_with_local_states(client, shards, tmp_path):
    first = tmp_path / "first.state"
    out = _dask(client, *shards[:3], *OPTIONS, "--save-state", str(first), "--format", "csv")
    assert out.code == 0, out.stderr
    second = tmp_path / "second.state"
    out = run(["batch", *shards[3:], *OPTIONS, "--save-state", str(second), "--format", "csv"])
    assert out.code == 0, out.stderr
    merged = run(["merge", str(first), str(second), "--format", "json"])
    assert merged.stdout == run(["batch", *shards, *OPTIONS, "--format", "json"]).stdout


def test_a_bad_row_names_its_true_line(client, shards, tmp_path):
    rng = np.random.default_rng(1)
    lines = _csv_text(*_rows(rng, 300), blank_every=13).splitlines()
    lines[250] = "0.5,1.5,oops,2.5,1"  # in the 6th of about 9 parts
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    local = run(["batch", shards[0], str(bad), "--ignore-index", "-100"])
    on_dask = _dask(client, shards[0], str(bad), "--ignore-index", "-100")
    assert local.code == on_dask.code == 1
    assert on_dask.stderr == local.stderr == f"Error: {bad}:251:3: logit is not a number ('oops')\n"
    assert on_dask.stdout == ""


def test_fsspec_file_urls_on_the_cluster(client, shards):
    urls = [f"file://{path}" for path in shards]
    options = BatchOptions(ignore_index=-100)
    got = xdask.accumulate(urls, options=options, client=client, part_bytes=PART).summary()
    want = run(["batch", *shards, "--ignore-index", "-100", "--format", "json"])
    assert [f.path for f in got.files] == urls
    document = json.loads(want.stdout)
    assert got.loss == document["loss"]
    assert [c.loss for c in got.per_class] == [c["loss"] for c in document["per_class"]]


def test_fsspec_memory_urls(shards):
    import fsspec

    memory = fsspec.filesystem("memory")
    urls = []
    for path in shards:
        name = f"/xent-test/{os.path.basename(path)}"
        memory.pipe(name, Path(path).read_bytes())
        urls.append(f"memory://{name}")
    try:
        # A URL of a Parquet file is not opened in the client: its kind must be given.
        with pytest.raises(XentError, match=r"s4\.parquet: the kind of scores is detected in"):
            xdask.score(urls, scheduler="synchronous", part_bytes=PART, ignore_index=-100)
        got = xdask.score(
            urls, scheduler="synchronous", part_bytes=PART, worst=3, ignore_index=-100,
            scores="logits",
        )  # fmt: skip
    finally:
        memory.rm("/xent-test", recursive=True)
    local = run(["batch", *shards, "--ignore-index", "-100", "--format", "json", "--worst", "3"])
    document = json.loads(local.stdout)
    assert got.loss == document["loss"]
    assert got.loss_sum == document["loss_sum"]
    assert [(w.line, w.loss) for w in got.worst] == [
        (w["line"], w["loss"]) for w in document["worst"]
    ]


def test_a_dask_dataframe(client):
    import dask.dataframe as dd
    import pandas as pd
    from scipy.special import logsumexp

    rng = np.random.default_rng(3)
    logits = rng.normal(scale=2.0, size=(500, 3))
    labels = rng.integers(0, 3, 500)
    frame = pd.DataFrame({"a": logits[:, 0], "b": logits[:, 1], "c": logits[:, 2], "y": labels})
    options = {"weights": (1.0, 0.5, 2.0), "worst": 4}
    got = xdask.score(dd.from_pandas(frame, npartitions=5), client=client, **options)
    whole = BatchAccumulator(3, BatchOptions(**options))
    whole.update(logits, labels, source="<dataframe>")
    want = whole.summary()
    assert (got.loss, got.per_class, got.worst, got.quantiles) == (
        want.loss,
        want.per_class,
        want.worst,
        want.quantiles,
    )
    # SciPy as the independent oracle: the weighted mean and the worst rows' numbers.
    weight = np.array(options["weights"])[labels]
    nll = logsumexp(logits, axis=1) - logits[np.arange(500), labels]
    expected = math.fsum(weight * nll) / math.fsum(weight)
    assert abs(got.loss - expected) <= 1e-14 * expected
    assert [w.line for w in got.worst] == [int(i) + 1 for i in np.argsort(-weight * nll)[:4]]
    assert {w.unit for w in got.worst} == {"row"}


def _one_process(path: Path, *args: str) -> str:
    out = run(["batch", str(path), "--format", "json", *args])
    return out.stdout if out.code == 0 else out.stderr


def _in_parts(path: Path, part: int, read: ReadOptions, options: BatchOptions) -> str:
    """The engine's tasks and tree run in this process (no cluster): parts of *part* bytes."""
    from xentcli.batch.engine import _resolve_scores, _tree
    from xentcli.batch.parts import finish, merge_results, score_part
    from xentcli.errors import DataError

    parts = plan([str(path)], read, part)
    # The engine settles the kind of scores once, before the parts (as accumulate does).
    read, options, columns = _resolve_scores([str(path)], read, options)
    results = [score_part(p, read, options) for p in parts]
    try:
        accumulator = finish(_tree(results, merge_results))
    except DataError as error:
        return f"Error: {error}\n"
    accumulator.columns = columns
    from xentcli.text import dumps

    return dumps(accumulator.summary().to_json()) + "\n"


def _body(
    rng: np.random.Generator, n: int, bad: tuple[int, ...] = (), blanks: int = 0
) -> list[str]:
    lines = []
    for i in range(n):
        row = ",".join(repr(float(v)) for v in rng.normal(size=3))
        lines.append("1,2,zz,0" if i in bad else f"{row},{rng.integers(0, 3)}")
        if blanks and i % blanks == 0:
            lines.append("   ")
    return lines


EDGES = {
    "crlf": lambda rng: "\r\n".join(["a,b,c,label", *_body(rng, 120)]) + "\r\n",
    "bom, blank lines before the header": lambda rng: (
        "\ufeff\n\n  \na,b,c,label\n" + "\n".join(_body(rng, 120, blanks=7)) + "\n"
    ),
    "no header": lambda rng: "\n".join(_body(rng, 120)) + "\n",
    "no final line break": lambda rng: "\n".join(["a,b,c,label", *_body(rng, 120)]),
    "bad rows skipped": lambda rng: (
        "\n".join(["a,b,c,label", *_body(rng, 200, (5, 77, 150, 151))]) + "\n"
    ),
    "a bad row": lambda rng: "\n".join(["a,b,c,label", *_body(rng, 200, (131,), blanks=9)]) + "\n",
}


@pytest.mark.parametrize("name", list(EDGES))
def test_byte_ranges_of_any_size_give_one_process_output(tmp_path, name):
    """Parts smaller than a line (empty parts), or a few lines: the same report, the same
    true line numbers (worst rows, skipped rows, errors)."""
    path = tmp_path / "edge.csv"
    path.write_text(EDGES[name](np.random.default_rng(5)), encoding="utf-8")
    skip = name == "bad rows skipped"
    # as xent batch reads (the kind of scores detected, as the one process does)
    read = ReadOptions(on_error="skip" if skip else "raise", scores="auto")
    expected = _one_process(path, *(["--on-error", "skip"] if skip else []))
    for part in (61, 700, 2500):
        assert _in_parts(path, part, read, BatchOptions()) == expected, part


def test_infinite_rows_name_their_true_lines_in_any_part(tmp_path):
    """Label smoothing with a masked class (-inf): every such row's loss is +inf; the rows
    named (the first 5, in file order) are the one process's, whatever the parts and the
    order in which the parts' states are merged."""
    from xentcli.batch.engine import _resolve_scores
    from xentcli.batch.parts import score_part
    from xentcli.batch.state_file import loads

    rng = np.random.default_rng(8)
    lines = _body(rng, 200)
    for i in (120, 131, 150, 163, 170, 181, 199):
        lines[i] = lines[i].split(",", 1)[0] + ",-inf," + lines[i].split(",")[2] + ",0"
    path = tmp_path / "masked.csv"
    path.write_text("\n".join(["a,b,c,label", *lines]) + "\n", encoding="utf-8")
    expected = _one_process(path, "--label-smoothing", "0.1")
    named = json.loads(expected)["infinite_rows"]
    assert [row["line"] for row in named] == [122, 133, 152, 165, 172]
    options = BatchOptions(label_smoothing=0.1)
    read = ReadOptions(scores="auto")
    for part in (61, 700, 2500):
        assert _in_parts(path, part, read, options) == expected, part
    # Merged the other way round (xent merge of a later part's state into an earlier one).
    read, options, _ = _resolve_scores([str(path)], read, options)
    states = [loads(score_part(p, read, options)["state"]) for p in plan([str(path)], read, 700)]
    merged = states.pop()
    while states:
        merged.merge(states.pop())
    assert [line for _, line in merged.infinite_rows] == [122, 133, 152, 165, 172]


def test_parquet_row_groups_name_true_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(6)
    logits = rng.normal(size=(200, 3))
    labels = rng.integers(0, 3, 200)
    path = tmp_path / "p.parquet"
    for nan in (False, True):
        if nan:
            logits[137, 1] = np.nan
        columns = {"a": logits[:, 0], "b": logits[:, 1], "c": logits[:, 2], "label": labels}
        pq.write_table(pa.table(columns), path, row_group_size=30)
        assert len(plan([str(path)], ReadOptions(scores="auto"), 500)) > 3
        got = _in_parts(path, 500, ReadOptions(scores="auto"), BatchOptions(worst=7))
        assert got == _one_process(path, "--worst", "7")
    assert got == f"Error: {path}:row 138:b: logit is NaN ('nan')\n"


def test_usage_errors(shards):
    out = run(["batch", "a.csv", "--scheduler", "tcp://127.0.0.1:1"])
    assert out.code == 2
    assert "--scheduler and --workers need --engine dask" in out.stderr
    out = run(["batch", shards[0], "--engine", "dask", "--scheduler", "not an address::"])
    assert out.code == 2
    assert out.stderr.startswith("Error: --scheduler not an address::: invalid address")
    out = run(["batch", "a.csv", "--engine", "dask", "--per-row", "rows.csv"])
    assert out.code == 2
    assert "--per-row is not available with --engine dask" in out.stderr
    out = run(["batch", shards[0], "--engine", "dask", "--bootstrap", "10", "--seed", "1"])
    assert out.code == 2
    assert "--bootstrap is not available with --engine dask" in out.stderr


def test_missing_extra_names_it(monkeypatch, shards):
    monkeypatch.setitem(sys.modules, "distributed", None)
    out = run(["batch", shards[0], "--engine", "dask"])
    assert out.code == 2
    assert out.stderr == (
        "Error: the Dask engine needs dask and distributed (distributed is missing):"
        " pip install 'xent[dask]'\n"
    )


def test_ctrl_c_exits_130_shuts_the_cluster_down_and_writes_nothing(shards, tmp_path):
    state = tmp_path / "run.state"
    args = [*shards[:3], "--engine", "dask", "--workers", "1", "--part-bytes", "200"]
    process = subprocess.Popen(
        [sys.executable, "-m", "xentcli", "batch", *args, "--save-state", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    children: list[str] = []
    deadline = time.monotonic() + 60
    while not children and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        for name in glob.glob(f"/proc/{process.pid}/task/*/children"):
            with open(name) as handle:
                children += handle.read().split()
    assert children, "the local cluster did not start"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.decode().endswith("Error: interrupted.\n")
    assert out == b""
    assert not state.exists()
    assert list(tmp_path.iterdir()) == []
    deadline = time.monotonic() + 15
    while any(os.path.exists(f"/proc/{c}") for c in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [c for c in children if os.path.exists(f"/proc/{c}")]


def test_a_worker_killed_mid_run_changes_nothing(client, shards):
    """Last: the cluster has lost a worker (its nanny restarts it, in its own time)."""
    files = shards  # about 30 parts of 300 bytes
    killed: list[float] = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(client.processing().values()):
                pid = next(iter(client.run(os.getpid).values()))
                os.kill(pid, signal.SIGKILL)
                killed.append(time.monotonic())
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    options = BatchOptions(ignore_index=-100)
    got = xdask.accumulate(files, options=options, client=client, part_bytes=300).summary()
    done = time.monotonic()
    killer.join()
    assert killed
    assert killed[0] < done
    local = run(["batch", *files, "--ignore-index", "-100", "--format", "json"])
    document = json.loads(local.stdout)
    assert got.loss == document["loss"]
    assert [c.loss_sum for c in got.per_class] == [c["loss_sum"] for c in document["per_class"]]
    assert [f.path for f in got.files] == files


# ------------------------------------------- the kind of scores: never guessed silently
def _probabilities(n: int = 300, seed: int = 8) -> tuple[np.ndarray, np.ndarray, str]:
    """Rows of probabilities (6 decimals, as predict_proba is often written), labels, CSV."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(4), size=n)
    labels = rng.integers(0, 4, n)
    text = "p0,p1,p2,p3,label\n" + "".join(
        ",".join(f"{v:.6f}" for v in row) + f",{label}\n"
        for row, label in zip(probs, labels, strict=True)
    )
    written = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1)[:, :4]
    return written, labels, text


def _mean_nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """The mean of -log p[label], written here from the definition (math.fsum)."""
    return math.fsum(-math.log(probs[i, y]) for i, y in enumerate(labels)) / len(labels)


def test_files_of_probabilities_are_detected_locally_and_at_a_url(tmp_path):
    import fsspec

    probs, labels, text = _probabilities()
    path = tmp_path / "proba.csv"
    path.write_text(text)
    memory = fsspec.filesystem("memory")
    memory.pipe("/xent-kind/proba.csv", text.encode())
    try:
        for source in (str(path), f"file://{path}", "memory:///xent-kind/proba.csv"):
            got = xdask.score([source], scheduler="synchronous")
            assert (got.scores, got.scores_detected) == ("probs", True), source
            assert got.loss == pytest.approx(_mean_nll(probs, labels), rel=1e-14), source
            # Told they are logits, they are scored as logits: given, never overridden.
            told = xdask.score([source], scheduler="synchronous", scores="logits")
            assert (told.scores, told.scores_detected) == ("logits", False)
            assert told.loss != pytest.approx(got.loss, rel=1e-3)
            told = xdask.score([source], scheduler="synchronous", scores="probs")
            assert (told.scores, told.scores_detected, told.loss) == ("probs", False, got.loss)
    finally:
        memory.rm("/xent-kind", recursive=True)
    options = xdask.accumulate([str(path)], options=BatchOptions(scores="probs"))
    assert options.summary().loss == got.loss


def test_the_cli_on_dask_detects_probabilities_at_a_url(tmp_path):
    probs, labels, text = _probabilities(n=120)
    path = tmp_path / "proba.csv"
    path.write_text(text)
    out = run(
        ["batch", "--engine", "dask", "--scheduler", "synchronous", f"file://{path}",
         "--format", "json"]
    )  # fmt: skip
    assert out.code == 0, out.stderr
    document = json.loads(out.stdout)
    assert (document["scores"], document["scores_detected"]) == ("probs", True)
    assert document["loss"] == pytest.approx(_mean_nll(probs, labels), rel=1e-14)
    assert out.stderr == "Scores: probabilities (detected; --scores to override)\n"


def test_a_url_of_another_format_needs_the_kind_of_scores(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    probs, labels, _text = _probabilities(n=50)
    path = tmp_path / "proba.parquet"
    columns = {f"p{k}": probs[:, k] for k in range(4)} | {"label": labels}
    pq.write_table(pa.table(columns), path)
    with pytest.raises(XentError, match="give --scores logits, probs or logprobs"):
        xdask.score([f"file://{path}"], scheduler="synchronous")
    got = xdask.score([f"file://{path}"], scheduler="synchronous", scores="probs")
    assert got.loss == pytest.approx(_mean_nll(probs, labels), rel=1e-14)


def test_a_dataframe_of_probabilities_is_detected(client):
    import dask.dataframe as dd
    import pandas as pd

    probs, labels, _text = _probabilities(n=200)
    frame = pd.DataFrame({"gold": labels} | {f"p{k}": probs[:, k] for k in range(4)})
    data = dd.from_pandas(frame, npartitions=3)
    # "gold" is a label column's name to xent batch: so it is here, first or last.
    got = xdask.score(data, client=client)
    assert (got.scores, got.scores_detected) == ("probs", True)
    assert got.loss == pytest.approx(_mean_nll(probs, labels), rel=1e-14)
    told = xdask.score(data, client=client, scores="logits")
    assert (told.scores, told.scores_detected) == ("logits", False)
    assert told.loss != pytest.approx(got.loss, rel=1e-3)


def _logits_text(n: int = 80, seed: int = 9) -> str:
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, 4)) * 3
    return "y0,y1,y2,y3,label\n" + "".join(
        ",".join(f"{v:.6f}" for v in row) + f",{label}\n"
        for row, label in zip(rows, rng.integers(0, 4, n), strict=True)
    )


def test_files_of_two_kinds_are_refused_as_one_process_refuses_them(tmp_path):
    """A file of logits and one of probabilities: each file's kind is detected, and the
    run is refused (exit 2) with one process's message, on either side; before, the
    second was read with the first's kind, as logits, in silence."""
    _probs, _labels, text = _probabilities(n=120)
    logits, proba = tmp_path / "logits.csv", tmp_path / "proba.csv"
    logits.write_text(_logits_text())
    proba.write_text(text)
    for files in ([logits, proba], [proba, logits]):
        local = run(["batch", *map(str, files), "--format", "json"])
        dask = run(
            ["batch", "--engine", "dask", "--scheduler", "synchronous", *map(str, files),
             "--format", "json"]
        )  # fmt: skip
        assert local.code == dask.code == 2
        assert dask.stdout == ""
        assert dask.stderr == local.stderr
        assert "holds logits but" in dask.stderr or "holds probabilities but" in dask.stderr
    with pytest.raises(XentError, match=r"holds probabilities but .* holds logits"):
        xdask.score([str(proba), str(logits)], scheduler="synchronous")
    # given, the kind is not detected: both read as told
    told = xdask.score([str(proba), str(logits)], scheduler="synchronous", scores="logits")
    assert told.scores == "logits"


def test_probabilities_rounded_past_the_tolerance_are_said_on_dask(tmp_path, client):
    """Scores all in [0, 1] whose rows do not sum to 1 (probabilities written to two
    decimals): read as logits, as in one process, and said on stderr in the same words,
    for files and for a Dask DataFrame."""
    import dask.dataframe as dd
    import pandas as pd

    probs, labels, _text = _probabilities(n=150)
    rounded = np.round(probs, 2)
    totals = rounded.sum(axis=1)
    assert np.abs(totals - 1).max() > 2e-4  # past the tolerance of 4 classes
    path = tmp_path / "rounded.csv"
    path.write_text(
        "p0,p1,p2,p3,label\n"
        + "".join(
            ",".join(f"{v:.2f}" for v in row) + f",{label}\n"
            for row, label in zip(rounded, labels, strict=True)
        )
    )
    local = run(["batch", str(path), "--format", "json"])
    dask = run(
        ["batch", "--engine", "dask", "--scheduler", "synchronous", str(path),
         "--format", "json"]
    )  # fmt: skip
    assert local.code == dask.code == 0
    note = (
        f"every score of the first rows is in [0, 1], but rows sum to {totals.min():.6g} to"
        f" {totals.max():.6g}, not 1 within 0.0002: read as logits. If they are"
        " probabilities, give --scores probs (with --sum-tolerance or --renormalize)"
    )
    assert dask.stderr.startswith(f"{path}: {note}\n")
    assert dask.stderr == local.stderr
    assert json.loads(dask.stdout)["loss"] == json.loads(local.stdout)["loss"]
    frame = pd.DataFrame({f"p{k}": rounded[:, k] for k in range(4)} | {"label": labels})
    notes: list[str] = []
    got = xdask.accumulate(dd.from_pandas(frame, npartitions=2), client=client, notes=notes)
    assert got.options.scores == "logits"
    assert notes == [f"<dataframe>: {note}"]


def test_a_dataframe_takes_the_sum_tolerance(tmp_path, client):
    """--sum-tolerance (ReadOptions.sum_tolerance) reaches a Dask DataFrame's partitions
    as it reaches a file's rows: probabilities written to two decimals are scored with
    it as `xent batch --scores probs --sum-tolerance` scores the same file (before, the
    partitions were checked with the default tolerance, and refused)."""
    import dask.dataframe as dd
    import pandas as pd

    rng = np.random.default_rng(12)
    rounded = np.round(rng.dirichlet(np.full(4, 8.0), size=150), 2)  # none rounds to 0
    labels = rng.integers(0, 4, 150)
    assert rounded.min() > 0
    assert np.abs(rounded.sum(axis=1) - 1).max() > 2e-4
    frame = pd.DataFrame({f"p{k}": rounded[:, k] for k in range(4)} | {"label": labels})
    path = tmp_path / "rounded.csv"
    frame.to_csv(path, index=False, float_format="%.2f")
    data = dd.from_pandas(frame, npartitions=3)
    with pytest.raises(XentError, match="sum"):
        xdask.score(data, client=client, scores="probs")
    read = ReadOptions(scores="probs", sum_tolerance=0.05)
    got = xdask.accumulate(data, read, BatchOptions(scores="probs"), client=client).summary()
    local = run(["batch", str(path), "--scores", "probs", "--sum-tolerance", "0.05",
                 "--format", "json"])  # fmt: skip
    assert local.code == 0, local.stderr
    assert got.loss == json.loads(local.stdout)["loss"]
    assert got.loss == pytest.approx(_mean_nll(rounded, labels), rel=1e-14)
