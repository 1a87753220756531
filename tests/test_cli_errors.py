"""Fast checks of the CLI's error handling (the full table is the slow bad-input sweep):
positive integers, output paths checked before any model is loaded, one-line usage errors,
offline Hub ids, and Ctrl-C -> exit 130 with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from llmrank.cli import main
from tests.bad_input_sweep import default_sigint, wait_for_fifo_reader

ROOT = Path(__file__).resolve().parents[1]


def _files(tmp: Path) -> dict[str, str]:
    (tmp / "run.trec").write_text("q1 Q0 d1 1 2.0 x\n")
    (tmp / "corpus.jsonl").write_text('{"_id": "d1", "text": "hello"}\n')
    (tmp / "topics.tsv").write_text("q1\thello\n")
    return {"run": str(tmp / "run.trec"), "corpus": str(tmp / "corpus.jsonl"), "topics": str(tmp / "topics.tsv")}


def _rerank(f: dict[str, str], out: str, *extra: str, model: str = "/nonexistent/model") -> list[str]:
    return ["rerank", "--model", model, "--run", f["run"], "--corpus", f["corpus"], "--topics", f["topics"],
            "--out", out, "--no-progress", *extra]  # fmt: skip


@pytest.mark.parametrize("argv", [
    ["rerank", "--batch-size", "0"], ["rerank", "--top-k", "0"], ["rerank", "--top-k", "-5"],
    ["rerank", "--queries-per-chunk", "0"], ["trec-dl", "--batch-size", "0"], ["trec-dl", "--hits", "-1"],
    ["beir", "--top-k", "0"], ["beir", "--threads", "0"], ["score", "--batch-size", "0"],
    ["score", "--chunk-lists", "-2"],
])  # fmt: skip
def test_non_positive_integers_are_rejected(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--model", "m", "--run", "r", "--out", "o", "--data", "d", "--datasets", "x"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and argv[1] in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("what", ["out-dir", "out-parent-file", "latency-dir", "latency-parent-file"])
def test_output_paths_checked_before_the_model(what: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The model does not exist: reaching it would give a model error, so the output error proves
    the output paths are checked first (before any model is loaded)."""
    f = _files(tmp_path)
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    out, extra = str(tmp_path / "out.trec"), []
    if what == "out-dir":
        out = str(tmp_path / "adir")
    elif what == "out-parent-file":
        out = str(tmp_path / "afile" / "out.trec")
    elif what == "latency-dir":
        extra = ["--latency", str(tmp_path / "adir")]
    else:
        extra = ["--latency", str(tmp_path / "afile" / "lat.json")]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(_rerank(f, out, *extra)) == 2
    err = capsys.readouterr().err
    flag = "--out" if what.startswith("out") else "--latency"
    assert err.startswith(f"llmrank rerank: error: {flag} ") and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_out_dir_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    f = _files(tmp_path)
    (tmp_path / "res").write_text("x")
    (tmp_path / "qrels.txt").write_text("q1 0 d1 1\n")
    assert main(["evaluate", "--run", f["run"], "--qrels", str(tmp_path / "qrels.txt"), "--out-dir",
                 str(tmp_path / "res")]) == 2  # fmt: skip
    assert "--out-dir" in capsys.readouterr().err
    assert main(["trec-dl", "--model", "none", "--years", "2019", "--first-stage", f["run"], "--out-dir",
                 str(tmp_path / "res")]) == 2  # fmt: skip
    assert "--out-dir" in capsys.readouterr().err and (tmp_path / "res").read_text() == "x"


def test_offline_unknown_hub_id_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    f = _files(tmp_path)
    assert main(_rerank(f, str(tmp_path / "o.trec"), model="nobody-xyz/no-such-model")) == 2
    err = capsys.readouterr().err
    assert "nobody-xyz/no-such-model" in err and "HF_HUB_OFFLINE" in err and len(err.strip().splitlines()) == 1


def test_train_config_flag_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`llmrank train --config X` reaches llmrank.train (it used to stop at argparse, exit 2)."""
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments" not in err and "missing.yaml does not exist" in err


def test_ctrl_c_exits_130_with_one_line(tmp_path: Path) -> None:
    """SIGINT while `llmrank evaluate` blocks reading its qrels from a named pipe."""
    (tmp_path / "run.trec").write_text("q1 Q0 d1 1 2.0 x\n")
    fifo = tmp_path / "qrels.txt"
    os.mkfifo(fifo)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "llmrank.cli", "evaluate", "--run", "run.trec", "--qrels",
                             "qrels.txt"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)  # fmt: skip
    writer = wait_for_fifo_reader(fifo, proc, 120)
    assert writer is not None, "the command never opened the qrels pipe"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    os.close(writer)
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["llmrank evaluate: interrupted (Ctrl-C)"]


def test_parsing_the_command_line_imports_no_torch() -> None:
    """Usage errors are instant and Ctrl-C during start-up is caught: torch loads inside main's try."""
    code = ("import sys, llmrank.cli as c; c.build_parser(); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))[:3])")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr[-1000:]


def test_export_formats_match_the_library() -> None:
    from llmrank.cli import build_parser
    from llmrank.commands.export import FORMATS as CLI_FORMATS
    from llmrank.export import FORMATS
    from llmrank.hub import PUSH_FORMATS

    assert CLI_FORMATS == FORMATS
    sub = next(a for a in build_parser()._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    push_format = next(a for a in sub.choices["push"]._actions if a.dest == "format")
    assert tuple(push_format.choices) == PUSH_FORMATS
