"""What a newcomer trips on at the command line (issue 18): `--config` after any (sub)command, every
`--help` with a description and help for every argument, a success line that tells the video's
length from the render time, and `api-key create` printing the secret alone on stdout."""

from __future__ import annotations

import argparse
import os
import re
import subprocess

from conftest import DHF, REPO, run_dhf

from cli.main import build_parser


def _parsers(parser: argparse.ArgumentParser, path: str = "dhf"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_command_has_a_description_and_every_argument_a_help():
    missing = []
    for path, parser in _parsers(build_parser()):
        if not parser.description:
            missing.append(f"{path}: no description")
        for action in parser._actions:
            if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction) and not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}: no help")
    assert missing == []


def test_config_is_read_after_any_subcommand(tmp_path):
    missing = tmp_path / "nope.yaml"
    for command in (["render", "x", "--avatar", "sample", "--lang", "en", "-o", str(tmp_path / "a.mp4")],
                    ["api-key", "create", "--name", "cms"], ["review", "list"], ["audit", "verify"]):  # fmt: skip
        result = run_dhf([*command, "--config", str(missing)], tmp_path)
        assert result.returncode == 2 and f"config file not found: {missing}" in result.stderr, (command, result)


def test_api_key_create_prints_only_the_secret_on_stdout(tmp_path):
    result = run_dhf(["api-key", "create", "--name", "cms", "--scopes", "render,review"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"dhf_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}\n", result.stdout), result.stdout
    assert "shown once" in result.stderr and "render,review" in result.stderr


def test_success_line_tells_video_length_from_render_time(rendered):
    line = rendered.stdout.strip().splitlines()[-1]
    match = re.search(r"\((\d+) frames = ([\d.]+) s of video, rendered in ([\d.]+) s\)", line)
    assert match, line
    assert abs(float(match[2]) - rendered.report["video"]["duration_s"]) < 0.06


def test_a_reader_that_stops_early_ends_dhf_quietly_with_status_0(tmp_path):
    """`dhf audit list | head -1`: the reader exits before dhf writes (here: its end of the pipe is closed
    before dhf starts), so dhf's write fails with EPIPE. Like other Unix tools it ends quietly with 0 (was:
    `dhf: error: Broken pipe; check the path and permissions`, exit 2, or Python's exit 120 at the final
    flush). A real pipe, a real dhf process."""
    env = {**os.environ, "DHF_HOME": str(tmp_path)}
    for command in (["audit", "list"], ["review", "list"], ["avatar", "list"]):
        read, write = os.pipe()
        os.close(read)  # the reader is gone
        try:
            done = subprocess.run(DHF + command, cwd=REPO, env=env, stdout=write, stderr=subprocess.PIPE, text=True,
                                  timeout=120)  # fmt: skip
        finally:
            os.close(write)
        assert (done.returncode, done.stderr) == (0, ""), (command, done.returncode, done.stderr[-2000:])
