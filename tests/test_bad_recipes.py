"""Every bad recipe of ``tests/bad_inputs_recipes.py`` fails with one clear line and creates nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrank.train import main
from tests.bad_inputs_recipes import BAD_RECIPES


def materialize(case: dict, tmp: Path) -> list[str]:
    """Write the case's files under ``tmp``; the argv with ``{tmp}`` filled in."""
    for rel, content in case["files"].items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace("{tmp}", str(tmp)), encoding="utf-8")
    return [a.replace("{tmp}", str(tmp)) for a in case["argv"]]


@pytest.mark.parametrize("case", BAD_RECIPES, ids=[c["name"] for c in BAD_RECIPES])
def test_bad_recipe_fails_cleanly(case: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = materialize(case, tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert argv[0] == "train"
    code = main(argv[1:])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if "error" in line]
    assert code != 0
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert case["expect_in_stderr"] in lines[0], lines[0]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "the run created files"
    assert not (tmp_path / "out").exists()
