"""The example commands of the docs: where they are, how they split into programs and arguments, and how a
command that is not run is still checked (the convention is in docs/contributing.md).

- ```` ```bash ```` blocks run, in order, page by page, in a fresh folder;
- ```` ```sh ```` blocks are checked without running: each ``recon`` command is parsed by the typer app
  (command, options, required arguments), each ``python scripts/X.py`` by the script's own argparse, each
  ``make`` target must exist in the Makefile;
- other blocks (``text``, ``yaml``, ...) are not commands.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
OPERATORS = {"&&", "||", ";", "|", "&"}
REDIRECTS = {">", ">>", "<", "2>", "&>"}
WRAPPERS = {"xvfb-run": {"-s", "--server-args", "-n", "--server-num"}, "/usr/bin/time": {"-o", "-f"},
            "timeout": set(), "sudo": set()}
"""Programs that run the command after their options; the options listed take a value."""
PLAIN = {"cat", "mkdir", "ls", "cd", "echo", "head", "tail", "pip", "apt-get", "git", "napari", "cp", "rm", "export",
         "touch", "tar", "split"}
"""Programs the docs may use that are not checked further."""


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """The README and every Markdown page of the docs."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    return [Block(page, text.count("\n", 0, m.start()) + 1, m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def commands(code: str) -> list[list[str]]:
    """The simple commands of shell ``code``: continuation lines joined, comments and redirections dropped,
    split at ``&&``, ``;``, ``|`` ..., environment assignments and wrappers (xvfb-run, time) taken off."""
    found = []
    for line in code.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        tokens = list(lexer)
        skip = False
        for i, token in enumerate(tokens):
            if skip:
                skip = False
            elif token in OPERATORS:
                found.append(current)
                current = []
            elif token in REDIRECTS or (token.isdigit() and i + 1 < len(tokens) and tokens[i + 1] in REDIRECTS):
                skip = token in REDIRECTS
            else:
                current.append(token)
        found.append(current)
    return [unwrapped for command in found if (unwrapped := _unwrap(command))]


def _unwrap(command: list[str]) -> list[str]:
    while command and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", command[0]):
        command = command[1:]
    if command and command[0] in WRAPPERS:
        takes_value, rest = WRAPPERS[command[0]], command[1:]
        while rest and rest[0].startswith("-"):
            rest = rest[2:] if rest[0] in takes_value else rest[1:]
        if command[0] == "timeout" and rest:
            rest = rest[1:]
        return _unwrap(rest)
    return command


def kind(command: list[str]) -> str:
    """recon | script | make | python (other python uses) | plain | unknown."""
    program = Path(command[0]).name
    if program == "recon":
        return "recon"
    if program.startswith("python"):
        return "script" if len(command) > 1 and command[1].startswith("scripts/") else "python"
    if program == "make":
        return "make"
    return "plain" if program in PLAIN else "unknown"


def check_recon(args: list[str]) -> str | None:
    """None if ``recon ARGS`` parses (command, options, arguments), else the usage error. typer (0.22+) carries
    its own copy of click, so its groups and exceptions are typer's, not ``click``'s."""
    import typer
    from typer.exceptions import TyperException

    from recon.cli import app

    command = typer.main.get_command(app)
    try:
        context = command.make_context("recon", list(args))
        while hasattr(command, "resolve_command"):  # a group: go down to the sub-command
            remaining = [*context._protected_args, *context.args]
            if not remaining:
                return None
            name, command, rest = command.resolve_command(context, remaining)
            context = command.make_context(name, rest, parent=context)
    except typer.Exit:
        return None  # --help, --version
    except TyperException as error:
        return error.format_message() if hasattr(error, "format_message") else str(error)
    return None


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, re.M))


SCRIPT_CHECKER = r"""
import argparse, json, runpy, sys

class Parsed(Exception):
    pass

original = argparse.ArgumentParser.parse_args

def parse_and_stop(self, args=None, namespace=None):
    original(self, args, namespace)
    raise Parsed

argparse.ArgumentParser.parse_args = parse_and_stop
problems = []
for script, args in json.loads(sys.argv[1]):
    sys.argv = [script, *args]
    try:
        runpy.run_path(script, run_name="__main__")
        problems.append(f"{script}: ran without parsing its arguments with argparse")
    except Parsed:
        pass
    except SystemExit as exit:
        if exit.code not in (0, None):
            problems.append(f"{script} {' '.join(args)}: argparse refused it (exit {exit.code})")
print(json.dumps(problems))
"""
"""Run in a child process: each script's argparse parses its arguments, then the script stops."""
