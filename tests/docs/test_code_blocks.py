"""Every code block of README.md and docs/*.md runs, as a reader would run it.

The pages are found on their own (a new page is picked up). In each one, every fenced block in
a language that runs (Python, shell) is run, in the order of the page, in one shell session per
page in a fresh directory, so a walk-through (register, sign in, call) carries its variables and
files from one block to the next. Blocks in the data and diagram languages are not run (JSON,
SQL, text, Mermaid, plain fences: answers, statements shown, output); a fence in a language
this test does not know fails it until it is put in one list or the other.

A block that cannot run on this machine says why on the line just before its fence,
``<!-- not-run: reason -->``, with a reason. Nothing else is skipped.

- Python blocks run as scripts with the project's interpreter; one with top-level ``await``
  runs as the body of ``async def main()`` passed to ``asyncio.run``, as docs/library.md says.
- Shell blocks run in ``bash`` with ``set -euo pipefail``, the virtual environment first on the
  ``PATH`` (as after ``. .venv/bin/activate``), and ``curl`` failing on an HTTP error
  (``--fail-with-body``), so a call the docs show must succeed. ``console`` blocks run their
  ``$ `` lines. When a page's shell blocks call the API or ``convstore``, ``convstore serve``
  runs for it, as after ``make run``: in the page's directory (its ``./convstore.db``, migrated
  on start, is the one the page's ``convstore`` commands use too), on a free port that stands
  in for the docs' ``localhost:8000``. The walk-throughs read JSON with ``jq``
  (``scripts/install-jq.sh`` installs it when missing).
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.live import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PYTHON = frozenset({"python", "py"})
SHELL = frozenset({"sh", "bash", "shell", "console"})
NOT_RUN_LANGUAGES = {
    "json": "data: request and response bodies, frames, log lines",
    "sql": "statements shown as convstore runs them, or for a superuser to run once",
    "text": "output",
    "mermaid": "a diagram",
    "": "plain text: output, layouts, usage lines",
}
"""The fence languages that are not code to run, and why."""
DOCS_ADDRESSES = ("localhost:8000", "127.0.0.1:8000")
"""Where the docs say ``make run`` serves; the page's server stands in for it."""
NOT_RUN = re.compile(r"^\s*<!--\s*not-run:(?P<reason>.*?)-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
PAGE_TIMEOUT = 120
"""Seconds one page's session may take (the whole test takes about 30 s)."""


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    code: str
    not_run: str | None

    def __str__(self) -> str:
        return f"{self.page}:{self.line} ({self.language or 'plain'})"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path) -> Iterator[Block]:
    """The fenced blocks of a page, each with its language and its not-run reason, if any."""
    lines = page.read_text(encoding="utf-8").splitlines()
    name = str(page.relative_to(ROOT))
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        assert end < len(lines), f"{name}:{i + 1}: the fence is never closed"
        body = "\n".join(line.removeprefix(indent) for line in lines[i + 1 : end])
        marker = NOT_RUN.match(lines[i - 1]) if i > 0 else None
        reason = marker["reason"].strip() if marker else None
        yield Block(name, i + 1, match["lang"].lower(), body + "\n", reason)
        i = end + 1


def runs(block: Block) -> bool:
    return block.not_run is None and block.language in PYTHON | SHELL


def needs_server(block: Block) -> bool:
    """A shell block that calls the API or runs ``convstore`` on the served database."""
    if block.language not in SHELL:
        return False
    return any(a in block.code for a in DOCS_ADDRESSES) or "convstore " in block.code


# ---- turning blocks into a session -------------------------------------------------------------


def python_script(code: str) -> str:
    """The block as a script: with top-level ``await``, the body of ``async def main()``."""
    try:
        compile(code, "<block>", "exec", dont_inherit=True)
    except SyntaxError:
        compile(code, "<block>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        body = textwrap.indent(code, "    ")
        return f"import asyncio\n\n\nasync def main() -> None:\n{body}\n\nasyncio.run(main())\n"
    return code


def console_commands(code: str) -> str:
    """The ``$ `` lines of a console block (and their ``\\`` continuations)."""
    commands: list[str] = []
    continued = False
    for line in code.splitlines():
        if line.startswith("$ ") or continued:
            commands.append(line.removeprefix("$ "))
            continued = line.endswith("\\")
    return "\n".join(commands) + "\n"


def shell_code(block: Block, base: str | None) -> str:
    code = console_commands(block.code) if block.language == "console" else block.code
    if base is not None:
        for address in DOCS_ADDRESSES:
            code = code.replace(f"http://{address}", base).replace(address, base)
    return code


PRELUDE = """\
set -euo pipefail
curl() { command curl --fail-with-body --max-time 30 "$@"; }
"""


def session(page_blocks: list[Block], workdir: Path, base: str | None) -> str:
    """One bash script running the page's blocks in order; each announces itself first."""
    parts = [PRELUDE]
    for n, block in enumerate(page_blocks):
        parts.append(f"echo '::block {block}' >&2\n")
        if block.language in PYTHON:
            script = workdir / f"block{n}.py"
            script.write_text(python_script(block.code), encoding="utf-8")
            parts.append(f'python "{script}" </dev/null\n')
        else:
            script = workdir / f"block{n}.sh"
            script.write_text(shell_code(block, base), encoding="utf-8")
            parts.append(f'source "{script}" </dev/null\n')
    return "".join(parts)


def reader_env() -> dict[str, str]:
    """The environment of a reader in a fresh shell with ``.venv`` activated: none of the test
    run's ``CONVSTORE_*`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVSTORE_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    env["CONVSTORE_LOG_FORMAT"] = "text"
    # Argon2 at OWASP's floor rather than the default cost: the same code, a quicker run.
    env.update(
        CONVSTORE_PASSWORD_HASH_TIME_COST="2",
        CONVSTORE_PASSWORD_HASH_MEMORY_KIB="19456",
        CONVSTORE_PASSWORD_HASH_PARALLELISM="1",
    )
    return env


@contextlib.contextmanager
def served(workdir: Path) -> Iterator[str]:
    """``convstore serve`` in ``workdir`` on a free port, ready; its base URL."""
    port = free_port()
    log = workdir / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "convstore"), "serve", "--port", str(port)],
            cwd=workdir,
            env=reader_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"convstore serve exited:\n{log.read_text()}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"/readyz never answered:\n{log.read_text()}"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ensure_jq() -> None:
    if shutil.which("jq") is None:
        subprocess.run(["sh", str(ROOT / "scripts" / "install-jq.sh")], check=True)
    assert shutil.which("jq"), "jq is missing: run scripts/install-jq.sh as root"


# ---- the tests ---------------------------------------------------------------------------------


def test_every_page_is_found_and_every_block_classified() -> None:
    found = {str(p.relative_to(ROOT)) for p in pages()}
    assert {"README.md", "docs/api.md", "docs/library.md", "docs/operations.md"} <= found
    unknown, unexplained = [], []
    for page in pages():
        for block in blocks(page):
            if block.language not in PYTHON | SHELL and block.language not in NOT_RUN_LANGUAGES:
                unknown.append(str(block))
            if block.not_run is not None and not block.not_run:
                unexplained.append(str(block))
    assert not unknown, f"fences in a language this test does not know: {unknown}"
    assert not unexplained, f"<!-- not-run: … --> needs a reason: {unexplained}"


def test_the_block_reader() -> None:
    page = ROOT / "tests" / "docs" / "sample.md"
    found = list(blocks(page))
    assert [(b.language, b.not_run, b.code) for b in found] == [
        ("python", None, "print(1)\n"),
        ("sh", "needs a GPU", "nvidia-smi\n"),
        ("json", None, '{"a": 1}\n'),
        ("console", None, "$ echo a \\\n  b\nout\n"),
        ("sh", "", "true\n"),
    ]
    assert console_commands(found[3].code) == "echo a \\\n  b\n"
    assert python_script("await x()\n").startswith("import asyncio")
    assert python_script("x = 1\n") == "x = 1\n"


def run_session(page_blocks: list[Block], workdir: Path, base: str | None) -> tuple[int, str]:
    """Run the page's session; its exit status and the last block it announced."""
    result = subprocess.run(
        ["bash", "-c", session(page_blocks, workdir, base)],
        cwd=workdir,
        env=reader_env(),
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT,
    )
    announced = re.findall(r"^::block (.+)$", result.stderr, flags=re.MULTILINE)
    assert result.returncode == 0 or announced, result.stderr
    last = announced[-1] if announced else ""
    if result.returncode != 0:
        last += f"\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    return result.returncode, last


def test_a_session_carries_state_and_stops_at_the_failing_block(tmp_path: Path) -> None:
    made = [
        Block("p.md", 1, "sh", "GREETING=hello\n", None),
        Block(
            "p.md", 5, "python", "import asyncio\nawait asyncio.sleep(0)\nopen('f', 'w')\n", None
        ),
        Block("p.md", 9, "console", '$ test "$GREETING" = hello && test -f f\nhello\n', None),
        Block("p.md", 13, "bash", "echo $UNSET_VARIABLE_OF_THE_TEST\n", None),
        Block("p.md", 17, "sh", "touch never\n", None),
    ]
    status, last = run_session(made[:3], tmp_path, None)
    assert (status, last) == (0, "p.md:9 (console)")
    status, last = run_session(made, tmp_path, None)
    assert status != 0
    assert last.startswith("p.md:13 (bash)")
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_code_blocks_of_the_page_run(page: Path, tmp_path: Path) -> None:
    page_blocks = [b for b in blocks(page) if runs(b)]
    if not page_blocks:
        return  # nothing to run on this page (its blocks are data, or marked not-run)
    with contextlib.ExitStack() as stack:
        base = None
        if any(needs_server(b) for b in page_blocks):
            ensure_jq()
            base = stack.enter_context(served(tmp_path))
        status, last = run_session(page_blocks, tmp_path, base)
    assert status == 0, f"{last}: exit {status}"
    assert last == str(page_blocks[-1])
