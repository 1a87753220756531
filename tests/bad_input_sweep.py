"""Replay a table of bad inputs through the installed ``llmrank`` console script and classify each.

A case is a plain dict (see ``tests/bad_inputs_cli.py``)::

    {"name": "rerank --out is a folder",
     "files": {"run.trec": "q1 Q0 d1 1 2.0 x\\n", "outdir/": ""},   # relpath -> str | bytes; "x/" = folder
     "argv": ["rerank", "--model", "{ckpt}", "--run", "run.trec", "--out", "outdir"],
     "expect_in_stderr": "--out"}

optional keys: ``copy`` ({relpath: "{ckpt}"}: copy an asset folder in first, e.g. to corrupt
it), ``fifo`` ([relpath]: named pipes), ``sigint`` ("fifo" = send SIGINT once the command has
opened the first FIFO for reading; "busy" = once torch is loaded, plus ``sigint_delay_s``),
``env`` (extra environment), ``kind`` (recipe, data, run, qrels, topics, corpus, checkpoint,
cli-path, signal, ...).

Placeholders in argv, file contents and ``expect_in_stderr``: ``{tmp}`` (the case folder, also
the working directory), ``{ckpt}`` (an llmrank cross-encoder checkpoint of a tiny BERT), ``{bert}``
(the tiny BERT base model), ``{root}`` (the checkout under test). Case tables are read from
``tests/bad_inputs_cli.py`` and, when present, ``tests/bad_inputs_data.py`` /
``tests/bad_inputs_recipes.py`` (each a module-level ``CASES`` list; the recipe table's is
``BAD_RECIPES``).

Each case is classified:

* ``traceback``: "Traceback" on stderr;
* ``silent``: exit status 0 (the bad input was accepted);
* ``clear``: exit status != 0, exactly one non-empty stderr line containing ``expect_in_stderr``,
  and nothing created, changed or removed in the case folder or the assets;
* ``unclear``: anything else (several lines, the file/key not named, or files touched).

``python -m tests.bad_input_sweep [--root CHECKOUT]`` prints the counts for a checkout (default:
this one), e.g. a pristine ``git worktree`` of main for a before/after comparison.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TABLES = ["tests.bad_inputs_cli", "tests.bad_inputs_data", "tests.bad_inputs_recipes"]
CASE_TIMEOUT_S = 180


def load_cases() -> list[dict[str, Any]]:
    """Every case of every table module that exists (names must be unique)."""
    cases: list[dict[str, Any]] = []
    for name in TABLES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        table = name.rsplit(".", 1)[1]
        rows = getattr(module, "CASES", None) or getattr(module, "BAD_RECIPES", None)
        if rows is None:
            raise AttributeError(f"{name} has neither CASES nor BAD_RECIPES")
        default_kind = {"bad_inputs_data": "data", "bad_inputs_recipes": "recipe"}.get(table, "")
        cases.extend(dict(case, table=table, kind=case.get("kind", default_kind)) for case in rows)
    names = [c["name"] for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, f"duplicate case names: {sorted(dupes)}"
    return cases


def console_script() -> str:
    here = Path(sys.executable).parent / "llmrank"
    found = str(here) if here.exists() else shutil.which("llmrank")
    if not found:
        raise RuntimeError("the llmrank console script is not installed (pip install -e .)")
    return found


def build_assets(folder: Path) -> dict[str, str]:
    """The tiny BERT and an llmrank checkpoint of it (untrained head), built once per sweep."""
    from llmrank.rankers.base import RankerSettings, family_class
    from tests.tiny_models import make_tiny_bert

    bert = folder / "bert"
    if not (bert / "config.json").exists():
        bert = make_tiny_bert(bert)
    ckpt = folder / "ckpt"
    if not (ckpt / "llmrank_config.json").exists():
        settings = RankerSettings(family="cross-encoder", model_name_or_path=str(bert), max_length=64,
                                  options={"pooling": "cls"})  # fmt: skip
        family_class("cross-encoder").build(settings).save_pretrained(ckpt)
    return {"bert": str(bert), "ckpt": str(ckpt)}


def _fill(value: Any, subs: dict[str, str]) -> Any:
    for key, sub in subs.items():
        if isinstance(value, str):
            value = value.replace("{" + key + "}", sub)
        elif isinstance(value, bytes):
            value = value.replace(b"{" + key.encode() + b"}", sub.encode())
    return value


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """{relpath: (kind, size, mtime_ns)} of everything under ``folder``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            kind = "dir" if p.is_dir() else "fifo" if p.is_fifo() else "file"
            out[str(p.relative_to(folder))] = (kind, 0 if kind == "dir" else st.st_size, st.st_mtime_ns)
    return out


@dataclass
class Outcome:
    name: str
    verdict: str  # clear | unclear | traceback | silent
    returncode: int
    stderr: str
    why: str
    seconds: float
    kind: str = ""
    table: str = ""


def default_sigint() -> None:
    """In the child: SIGINT back to its default action. A sweep started in the background by a
    shell inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_fifo_reader(path: Path, proc: subprocess.Popen, timeout: float) -> int | None:
    """Open ``path`` for writing once the command has opened it for reading, then wait until the
    command blocks in its pipe read (the state the Ctrl-C cases are about: a SIGINT sent right after
    the open was once not acted on under CI load); returns the writer's fd, None if never opened."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            time.sleep(0.05)
            continue
        wait_for_proc_text(proc, "wchan", "pipe", max(end - time.monotonic(), 0.0))
        return writer
    return None


def wait_for_proc_text(proc: subprocess.Popen, entry: str, needle: str, timeout: float) -> bool:
    """Poll ``/proc/PID/<entry>`` until it contains ``needle`` (e.g. ``maps`` / ``libtorch``: torch is
    loaded; ``wchan`` / ``pipe``: blocked reading a pipe); False on timeout or exit."""
    end = time.monotonic() + timeout
    path = Path(f"/proc/{proc.pid}/{entry}")
    while time.monotonic() < end and proc.poll() is None:
        try:
            if needle in path.read_text():
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def run_case(case: dict[str, Any], assets: dict[str, str], root: Path, script: str) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="llmrank-bad-") as tmp_s:
        tmp = Path(tmp_s)
        subs = {"tmp": str(tmp), "root": str(root), **assets}
        for rel, src in (case.get("copy") or {}).items():
            shutil.copytree(_fill(src, subs), tmp / rel)
        for rel, content in (case.get("files") or {}).items():
            path = tmp / rel
            if rel.endswith("/"):
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            content = _fill(content, subs)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        for rel in case.get("fifo") or []:
            os.mkfifo(tmp / rel)
        argv = [script, *[_fill(a, subs) for a in case["argv"]]]
        env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", **{k: _fill(v, subs) for k, v in (case.get("env") or {}).items()}}
        before = snapshot(tmp)
        assets_before = {k: snapshot(Path(v)) for k, v in assets.items()}
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, cwd=tmp, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace",
                                preexec_fn=default_sigint)  # fmt: skip
        writer = None
        try:
            mode = case.get("sigint")
            if mode == "fifo":
                writer = wait_for_fifo_reader(tmp / case["fifo"][0], proc, CASE_TIMEOUT_S)
                if writer is not None:
                    proc.send_signal(signal.SIGINT)
            elif mode == "busy":
                wait_for_proc_text(proc, "maps", "libtorch", CASE_TIMEOUT_S)
                time.sleep(float(case.get("sigint_delay_s", 2.0)))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=CASE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
            stderr += "\n[sweep: timed out]"
        finally:
            if writer is not None:
                os.close(writer)
        seconds = time.monotonic() - t0
        after = snapshot(tmp)
        assets_after = {k: snapshot(Path(v)) for k, v in assets.items()}
    expect = _fill(case.get("expect_in_stderr", ""), subs)
    lines = [line for line in stderr.splitlines() if line.strip()]
    changed = sorted(set(before) ^ set(after) | {k for k in before if k in after and before[k] != after[k]})
    touched_assets = [k for k in assets if assets_before[k] != assets_after[k]]
    if "Traceback" in stderr:
        verdict, why = "traceback", lines[-1] if lines else ""
    elif proc.returncode == 0:
        verdict, why = "silent", "exit status 0"
    elif len(lines) != 1:
        verdict, why = "unclear", f"{len(lines)} stderr lines"
    elif expect and expect not in stderr:
        verdict, why = "unclear", f"{expect!r} not named"
    elif changed or touched_assets:
        verdict, why = "unclear", f"touched {(changed + touched_assets)[:3]}"
    else:
        verdict, why = "clear", ""
    return Outcome(case["name"], verdict, proc.returncode, stderr, why, seconds, case.get("kind", ""),
                   case.get("table", ""))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay the bad-input table and print clear/unclear/traceback/silent counts.")
    parser.add_argument("--root", default=str(ROOT), help="checkout whose llmrank is run (PYTHONPATH)")
    parser.add_argument("--assets", help="folder for the tiny model and checkpoint (default: a temp folder)")
    parser.add_argument("--only", help="run the cases whose name contains this text")
    parser.add_argument("--table", help="run one table (bad_inputs_cli, bad_inputs_data, bad_inputs_recipes)")
    parser.add_argument("--json", help="write every outcome here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print stderr of the non-clear cases")
    args = parser.parse_args(argv)
    cases = [c for c in load_cases() if (not args.only or args.only in c["name"])
             and (not args.table or c["table"] == args.table)]  # fmt: skip
    assets_dir = Path(args.assets or tempfile.mkdtemp(prefix="llmrank-sweep-assets-"))
    assets = build_assets(assets_dir)
    script = console_script()
    outcomes = []
    t0 = time.monotonic()
    for case in cases:
        out = run_case(case, assets, Path(args.root).resolve(), script)
        outcomes.append(out)
        print(f"{out.verdict:9s} {out.seconds:5.1f}s  {out.name}" + (f"  [{out.why}]" if out.why else ""), flush=True)
        if args.verbose and out.verdict != "clear":
            print("    " + "\n    ".join(out.stderr.strip().splitlines()[-6:]))
    counts = Counter(o.verdict for o in outcomes)
    total = time.monotonic() - t0
    print(f"\n{len(outcomes)} bad inputs -> {counts['clear']} clear, {counts['unclear']} unclear, "
          f"{counts['traceback']} tracebacks, {counts['silent']} silent ({total:.0f} s; root {args.root})")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps([o.__dict__ for o in outcomes], indent=1))
    if not args.assets:
        shutil.rmtree(assets_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
