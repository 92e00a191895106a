"""The docs: generated pages current, the site builds with --strict, every example command checked or run.

The convention (docs/contributing.md): ```bash blocks run, in order, page by page, in a fresh folder with the
venv's ``recon`` on PATH; ```sh blocks are parsed, not run (recon commands by the typer app, scripts by their
argparse, make targets against the Makefile). The pages run two at a time in the background from the first
test that needs them, so the whole file takes about as long as its slowest pages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from .doc_commands import (
    ROOT,
    SCRIPT_CHECKER,
    blocks,
    check_recon,
    commands,
    kind,
    make_targets,
    pages,
)

PAGE_TIMEOUT_S = 600
BIN = Path(sys.executable).parent


def _checked_commands() -> list[tuple[str, list[str]]]:
    """(where, command) of every command in a bash or sh block of every page."""
    return [(block.where(), command) for page in pages() for block in blocks(page) if block.lang in ("bash", "sh")
            for command in commands(block.code)]


def test_generated_pages_are_current():
    done = subprocess.run([sys.executable, "scripts/docs_site.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("mkdocs", path=str(BIN)) is None,
                    reason="needs the docs extra: pip install -e '.[docs]' (make installs it)")
def test_site_builds_with_strict(tmp_path):
    done = subprocess.run([str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-5000:]
    assert (tmp_path / "site" / "reference" / "methods.html").is_file()
    assert "recon demo" in (tmp_path / "site" / "index.html").read_text()  # the README is the home page


def _nav_pages(node) -> list[str]:
    """The page paths of an mkdocs ``nav`` (nested lists of pages and ``{title: page or section}``)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return [page for item in node for page in _nav_pages(item)]


def test_the_nav_lists_every_page_and_only_pages_that_exist():
    """The mkdocs hook (scripts/docs_site.py) drops nav entries whose page is missing, so the strict build cannot
    see a mistyped or forgotten entry; mkdocs only notes a page left out of the nav. index.md is the README."""
    import yaml

    nav = _nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    on_disk = {page.relative_to(ROOT / "docs").as_posix() for page in (ROOT / "docs").rglob("*.md")}
    assert sorted(set(nav) - on_disk - {"index.md"}) == [], "nav entries without a page"
    assert sorted(on_disk - set(nav)) == [], "pages missing from mkdocs.yml's nav"
    assert len(nav) == len(set(nav)), "a page listed twice"


def test_every_command_names_a_known_program():
    unknown = [f"{where}: {' '.join(command)}" for where, command in _checked_commands() if kind(command) == "unknown"]
    assert not unknown, "programs the docs checker does not know (see tests/docs/doc_commands.py PLAIN):\n" + \
        "\n".join(unknown)


def test_every_recon_command_parses():
    wrong = [f"{where}: {' '.join(command)}: {problem}" for where, command in _checked_commands()
             if kind(command) == "recon" and (problem := check_recon(command[1:]))]
    assert not wrong, "\n".join(wrong)


def test_every_make_target_exists():
    targets = make_targets()
    wrong = [f"{where}: {' '.join(command)}" for where, command in _checked_commands()
             if kind(command) == "make" and not set(command[1:]) <= targets]
    assert not wrong, "\n".join(wrong)


def test_every_script_command_parses():
    scripts = [[command[1], command[2:]] for _, command in _checked_commands() if kind(command) == "script"]
    assert scripts
    done = subprocess.run([sys.executable, "-c", SCRIPT_CHECKER, json.dumps(scripts)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []


RUN_PAGES = [page for page in pages() if any(block.lang == "bash" for block in blocks(page))]


def _run_page(page: Path, folder: Path) -> subprocess.CompletedProcess:
    script = "\n".join(["set -euo pipefail", *(f"# {b.where()}\n{b.code}" for b in blocks(page) if b.lang == "bash")])
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1", "COLUMNS": "100"}
    folder.mkdir(parents=True)
    return subprocess.run(["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=PAGE_TIMEOUT_S, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def page_runs(tmp_path_factory) -> dict[Path, Future]:
    """Every page with bash blocks, run two at a time (each command is one-threaded) from the first request."""
    pool = ThreadPoolExecutor(max_workers=2)
    base = tmp_path_factory.mktemp("docs_pages")
    runs = {page: pool.submit(_run_page, page, base / f"{i}_{page.stem}") for i, page in enumerate(RUN_PAGES)}
    yield runs
    pool.shutdown(wait=True, cancel_futures=True)


def test_some_pages_have_runnable_examples():
    names = {page.relative_to(ROOT).as_posix() for page in RUN_PAGES}
    assert {"README.md", "docs/guides/ct.md", "docs/guides/mri.md", "docs/guides/radar.md"} <= names


@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
@pytest.mark.slow
def test_bash_examples_run(page, page_runs):
    done = page_runs[page].result()
    assert done.returncode == 0, f"{page}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
