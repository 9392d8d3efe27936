"""What a user of any Unix command line expects of `dhf` (issue 28), through the real CLI: `--version`,
`--json` documents that parse and say what the text lines say, `dhf voices|languages|scenes` listing
exactly what a render accepts, `--dry-run` that checks and writes nothing, `-v/--log-level`, progress
bars only on a terminal (a plain line per stage elsewhere), and error lines without Python reprs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import re
import select
from importlib.metadata import version

import yaml
from conftest import own_home, run_dhf

from avatars.library import BUNDLED
from cli.batch import BatchPrinter
from cli.render import _Progress
from config import load_settings, load_voices

LICENSE = yaml.safe_load((BUNDLED / "sample" / "license.yaml").read_text(encoding="utf-8"))
HELLO = ["Hello there.", "--avatar", "sample", "--lang", "en"]


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("dhf: error: "), result.stderr
    return lines[0]


def test_version_names_the_installed_distribution(tmp_path):
    result = run_dhf(["--version"], tmp_path)
    assert (result.returncode, result.stdout) == (0, f"dhf {version('digital-human-factory')}\n"), result


def test_voices_languages_and_scenes_list_what_a_render_accepts_including_the_users_config(dhf_home, tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text(
        "voices:\n  en-test-slow: {language: en, espeak_voice: en-us, rate: 120}\nscene:\n  channels: {web: web}\n",
        encoding="utf-8",
    )
    settings = load_settings(config, home=dhf_home)
    voices, defaults = load_voices(settings)
    listed = run_dhf(["voices", "--json", "--config", str(config)], dhf_home)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert {row["name"] for row in rows} == set(voices) and "en-test-slow" in voices
    assert {row["language"]: row["name"] for row in rows if row["default"]} == defaults
    assert next(row for row in rows if row["name"] == "en-test-slow")["rate"] == 120
    text = run_dhf(["voices", "--config", str(config)], dhf_home).stdout.splitlines()
    assert [line.split("\t")[0] for line in text] == [row["name"] for row in rows]
    # a listed voice is one a render accepts
    accepted = run_dhf(["render", *HELLO, "--voice", "en-test-slow", "-o", str(tmp_path / "v.mp4"), "--dry-run",
                        "--json", "--config", str(config)], dhf_home)  # fmt: skip
    assert accepted.returncode == 0 and json.loads(accepted.stdout)["voice"] == "en-test-slow", accepted.stderr

    languages = json.loads(run_dhf(["languages", "--json"], dhf_home).stdout)
    by_code = {row["code"]: row for row in languages}
    assert {code: row["default_voice"] for code, row in by_code.items() if row["default_voice"]} == defaults
    assert by_code["en"]["name"] == "English" and "en-us-male" in by_code["en"]["voices"]

    scenes = json.loads(run_dhf(["scenes", "--json", "--config", str(config)], dhf_home).stdout)
    assert [row["name"] for row in scenes] == sorted(settings.scenes)
    web = next(row for row in scenes if row["name"] == "web")
    template = settings.scenes["web"]
    assert (web["width"], web["height"], web["channels"]) == (template.width, template.height, ["web"])


def test_avatar_and_audit_lists_as_json_say_what_the_text_lists_say(tmp_path):
    home = own_home(tmp_path / "home")
    refused = run_dhf(["render", "Hi.", "--avatar", "sample", "--lang", "en", "--channel", "tv",
                       "-o", str(tmp_path / "r.mp4")], home)  # fmt: skip
    assert "channel 'tv' is out of scope" in one_error_line(refused)

    avatars = run_dhf(["avatar", "list", "--json"], home)
    assert avatars.returncode == 0, avatars.stderr
    rows = json.loads(avatars.stdout)
    text = [line.split("\t") for line in run_dhf(["avatar", "list"], home).stdout.splitlines()]
    assert [[row["id"], f"v{row['version']}", row["status"], row["name"]] for row in rows] == text
    sample = next(row for row in rows if row["id"] == "sample")
    assert sample["authorized"] is True and sample["status"] == f"authorized until {LICENSE['valid_until']}"
    shown = json.loads(run_dhf(["avatar", "show", "sample", "--json"], home).stdout)
    assert {key: shown[key] for key in sample} == sample
    assert (
        shown["license"]["id"] == LICENSE["license_id"] and shown["license"]["purposes"] == LICENSE["scope"]["purposes"]
    )
    assert shown["photo_sha256"] == hashlib.sha256((BUNDLED / "sample" / "portrait.png").read_bytes()).hexdigest()
    models = json.loads(run_dhf(["models", "verify", "--json"], home).stdout)
    text = run_dhf(["models", "verify"], home).stdout.splitlines()
    assert [f"{m['name']}: ok {m['path']}" for m in models if m["state"] == "ok"] == [t for t in text if ": ok " in t]

    entries = json.loads(run_dhf(["audit", "list", "--json"], home).stdout)
    listed = [line.split("\t") for line in run_dhf(["audit", "list"], home).stdout.splitlines()]
    assert len(entries) == len(listed) == 1
    entry = entries[0]
    assert [str(entry["id"]), entry["time"], entry["user"], entry["outcome"]] == listed[0][:4]
    assert entry["outcome"] != "success" and "channel 'tv'" in entry["detail"] and entry["entry_hash"]
    exported = json.loads(run_dhf(["audit", "export", "--json"], home).stdout)
    assert entries == exported


def test_render_dry_run_checks_everything_and_writes_nothing(tmp_path):
    home = own_home(tmp_path / "home")
    output = tmp_path / "new" / "folder" / "hello.mp4"
    checked = run_dhf(["render", *HELLO, "-o", str(output), "--dry-run", "--json"], home)
    assert checked.returncode == 0, checked.stderr
    document = json.loads(checked.stdout)
    assert document["valid"] is True and document["video"] == str(output)
    assert (document["avatar"], document["license_id"]) == ("sample", LICENSE["license_id"])
    assert document["characters"] == len("Hello there.") and document["outputs"]["srt"] == str(
        output.with_suffix(".srt")
    )
    assert not (tmp_path / "new").exists()  # not the video, not even the folder made to test it
    assert json.loads(run_dhf(["audit", "list", "--json"], home).stdout) == []  # nothing attempted
    line = run_dhf(["render", *HELLO, "-o", str(output), "--dry-run"], home).stdout
    assert line.startswith(f"would render {output}: sample v1") and "nothing written" in line
    # refused exactly as the render would be: one line, exit 2, nothing written
    for extra, problem in ((["--channel", "tv"], "channel 'tv' is out of scope"),
                           (["--scene", "nowhere"], "unknown scene 'nowhere'")):  # fmt: skip
        refused = run_dhf(["render", *HELLO, "-o", str(output), "--dry-run", *extra], home)
        assert problem in one_error_line(refused) and refused.stdout == ""
    assert not (tmp_path / "new").exists()


def test_batch_dry_run_lists_every_video_and_renders_nothing(dhf_home, tmp_path):
    script = tmp_path / "faq.yaml"
    script.write_text(
        "name: faq\navatar: sample\nlanguages: [en, zh]\nitems:\n"
        "  - id: hello\n    text: {en: Hello there., zh: 你好。}\n  - id: bye\n    text: {en: Goodbye., zh: 再见。}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    checked = run_dhf(["batch", str(script), "--out", str(out), "--dry-run", "--json"], dhf_home)
    assert checked.returncode == 0, checked.stderr
    document = json.loads(checked.stdout)
    assert document["output"] == str(out / "faq") and document["languages"] == ["en", "zh"]
    assert [(v["item"], v["language"], v["characters"]) for v in document["videos"]] == [
        ("hello", "en", 12), ("hello", "zh", 3), ("bye", "en", 8), ("bye", "zh", 3)
    ]  # fmt: skip
    _voices, defaults = load_voices()
    assert {v["language"]: v["voice"] for v in document["videos"]} == {"en": defaults["en"], "zh": defaults["zh"]}
    text = run_dhf(["batch", str(script), "--out", str(out), "--dry-run"], dhf_home)
    assert text.stdout.splitlines()[-1].startswith("faq: 4 videos would be rendered") and not out.exists()
    script.write_text(script.read_text(encoding="utf-8").replace("Goodbye.", "x" * 20000), encoding="utf-8")
    refused = run_dhf(["batch", str(script), "--out", str(out), "--dry-run"], dhf_home)
    assert "items[1].text" in one_error_line(refused) and not out.exists()


def test_log_level_options_show_the_log_on_stderr_only_when_asked(dhf_home):
    info = re.compile(r"^INFO dhf\.cli: dhf \S+: scenes \(Python [\d.]+\)$", re.M)
    assert run_dhf(["scenes"], dhf_home).stderr == ""
    for options in (["-v", "scenes"], ["scenes", "-v"], ["--log-level", "debug", "scenes"], ["scenes", "--log-level",
                    "INFO"]):  # fmt: skip
        result = run_dhf(options, dhf_home)
        assert result.returncode == 0 and info.search(result.stderr), (options, result.stderr)
    assert run_dhf(["-v", "--log-level", "warning", "scenes"], dhf_home).stderr == ""  # --log-level wins


def test_help_shows_percent_signs_once(dhf_home):
    result = run_dhf(["evaluate-avatar", "--help"], dhf_home)
    assert "last 20 % of" in " ".join(result.stdout.split()) and "%%" not in result.stdout, result.stdout


def test_verify_on_a_file_that_is_not_a_video_says_why_in_words(dhf_home, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n", encoding="utf-8")
    line = one_error_line(run_dhf(["verify", str(text)], dhf_home))
    assert line == (
        f"dhf: error: {text} is not a readable video (Invalid data found when processing input); "
        "give a video file ffmpeg can read, e.g. an MP4"
    )


def test_render_json_through_a_pipe_is_the_outcome_with_one_plain_line_per_stage(dhf_home, tmp_path):
    """A real render whose stdout and stderr are pipes (a script, CI, a log file): stdout is one JSON
    document that agrees with the report; stderr has a line per stage and no bar (no carriage returns,
    no escape codes)."""
    output = tmp_path / "hello.mp4"
    result = run_dhf(["render", "Hello.", "--avatar", "sample", "--lang", "en", "-o", str(output), "--json"], dhf_home)
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads(result.stdout)
    report = json.loads(output.with_name("hello.report.json").read_text(encoding="utf-8"))
    assert document["status"] == "published" and document["review"] is None
    assert (document["video"], document["captions"]) == (str(output), str(output.with_suffix(".srt")))
    assert output.is_file() and document["report"] == str(output.with_name("hello.report.json"))
    assert abs(document["duration_s"] - report["video"]["duration_s"]) < 0.06 and document["frames"] > 0
    assert 0 < document["render_seconds"] < 600
    stages = ["speech", "visemes", "driver", "avatar", "render", "quality", "package"]
    assert re.findall(r"^stage (\d)/7: (\w+)$", result.stderr, re.M) == [
        (str(i), name) for i, name in enumerate(stages, 1)
    ], result.stderr
    assert "\r" not in result.stderr and "\x1b" not in result.stderr


def test_progress_is_bars_on_a_terminal_and_one_plain_line_per_stage_elsewhere():
    names = ["speech", "visemes", "render"]
    log = io.StringIO()  # a log file or a pipe: not a terminal
    progress = _Progress(names, quiet=False, stream=log)
    for name in [*names, "render", "fallback"]:  # a stage may report twice; the gate's fallback is unplanned
        progress.on_stage(name)
        progress.on_frame(5, 10)
    progress.close()
    assert log.getvalue() == "stage 1/3: speech\nstage 2/3: visemes\nstage 3/3: render\nstage 3/3: fallback\n"
    quiet = io.StringIO()
    progress = _Progress(names, quiet=True, stream=quiet)
    progress.on_stage("speech")
    progress.close()
    assert quiet.getvalue() == ""
    terminal, screen = pty.openpty()
    with os.fdopen(screen, "w") as stream:
        progress = _Progress(names, quiet=False, stream=stream)
        for name in names:
            progress.on_stage(name)
            progress.on_frame(10, 10)
        progress.close()
        stream.flush()
        drawn = b""
        while select.select([terminal], [], [], 0.5)[0]:  # everything drawn so far (a pty hands it in pieces)
            drawn += os.read(terminal, 65536)
    os.close(terminal)
    drawn = drawn.decode()
    assert "\r" in drawn and "stages" in drawn and "frames (render)" in drawn and "stage 1/3" not in drawn


def test_batch_draws_its_bar_only_on_a_terminal(capsys):
    printer = BatchPrinter(None)  # stderr is pytest's capture here, not a terminal
    printer.started("", 2)
    assert printer.bar is None
    printer.__exit__(None, None, None)
    assert capsys.readouterr().err == ""
