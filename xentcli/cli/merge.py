"""``xent merge``: the report of the union of saved states (``xent batch --save-state``).

Every figure is the same bits as one ``xent batch`` over all the states' inputs, in the
order the states are listed. A state that cannot be read, or that was made with other
options, classes or another format version, is one line ``Error: FILE: ...``, exit 1.
"""

from __future__ import annotations

import click

from xentcli.cli.params import REPORT_FORMAT
from xentcli.cli.tools import BadData
from xentcli.errors import DataError, StateError
from xentcli.text import plural

EPILOG = """\b
Examples:
  xent batch shard1.csv --save-state shard1.state
  xent batch shard2.csv --save-state shard2.state
  xent merge shard1.state shard2.state
  xent merge 'states/*.state' --format json --save-state all.state
"""


@click.command(epilog=EPILOG, context_settings={"max_content_width": 100})
@click.argument("states", nargs=-1, required=True, metavar="STATE...")
@REPORT_FORMAT
@click.option(
    "--save-state",
    metavar="PATH",
    help="Also save the merged state (written atomically).",
)
def merge(states: tuple[str, ...], fmt: str, save_state: str | None) -> None:
    """Merge saved states of xent batch runs into the report of all their inputs.

    STATE files come from xent batch --save-state (or xent merge --save-state); quoted
    globs are expanded. The report is the same bits as one xent batch over every input.
    """
    from xentcli.batch.state_file import read_state
    from xentcli.cli.batch import _refuse_overwriting_an_input, expand_paths, finish

    paths = expand_paths(states)
    if save_state is not None:
        _refuse_overwriting_an_input(save_state, paths, "--save-state")
    merged = None
    for path in paths:
        try:
            accumulator = read_state(path)
        except StateError as error:
            raise BadData(f"{path}: {error}") from None
        except DataError as error:
            raise BadData(str(error)) from None
        if merged is None:
            merged = accumulator
            continue
        if merged.options.exact != accumulator.options.exact:
            made = {True: "with --exact", False: "without --exact"}
            raise BadData(
                f"{path}: made {made[accumulator.options.exact]}, {paths[0]}"
                f" {made[merged.options.exact]}: correctly rounded and default states"
                " do not merge"
            )
        try:
            merged.merge(accumulator)
        except StateError as error:
            raise BadData(f"{path}: does not merge with {paths[0]}: {error}") from None
    assert merged is not None
    if merged.undecided():
        raise BadData(
            f"{', '.join(paths)}: --exact: a merged figure is within its error bound of a"
            " rounding boundary (rare: about 3 figures in 10 million) and the states cannot decide it:"
            " run xent batch --exact over all the inputs in one run"
        )
    finish(merged, fmt, save_state, title=f"xent merge of {plural(len(paths), 'state')}")
