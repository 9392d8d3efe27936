"""The architecture as tests: import contracts, one error hierarchy, typed settings with one-line
errors naming file and key, a typed report, and imports without side effects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, assert_refused, run_dhf

from config import ConfigError, DhfError, load_settings
from pipeline.report import RenderReport

STAGE_PACKAGES = (
    "config", "media", "phoneme", "vision", "driver_synth", "fusion", "avatars", "quality", "governance", "pipeline",
)  # fmt: skip


def test_the_import_contracts_hold():
    """The same check `scripts/test` runs before pytest; here so `pytest` alone catches a violation."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "7 kept, 0 broken" in result.stdout


def test_the_import_contract_catches_a_violation(tmp_path):
    """A stage that imports Prefect, the CLI, or a sibling in a cycle is refused (the contract can fail)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for package in (*STAGE_PACKAGES, "flows", "api", "cli"):
        subprocess.run(["cp", "-r", str(REPO / package), str(tree / package)], check=True)
    subprocess.run(["cp", str(REPO / "pyproject.toml"), str(tree)], check=True)
    with (tree / "quality" / "scores.py").open("a") as handle:
        handle.write("\nimport prefect  # noqa\nfrom cli import main  # noqa\nfrom quality import gate  # noqa\n")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=tree, env=env, capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert "quality is not allowed to import cli" in result.stdout
    assert "quality.scores -> prefect" in result.stdout
    assert ".scores -> .gate" in result.stdout


def _all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


def test_every_user_facing_error_is_a_dhf_error_with_exit_code_and_http_status():
    for module in ("api.keys", "api.store", "flows.errors", "governance.audit", "governance.c2pa_signing",
                   "pipeline.batch_script", "quality.errors", "avatars.errors", "fusion.errors", "vision.errors",
                   "media.errors",
                   "phoneme.errors"):  # fmt: skip
        __import__(module)
    errors = _all_subclasses(DhfError)
    names = {error.__name__ for error in errors}
    assert {"ConfigError", "SpeechError", "FusionError", "MediaError", "AvatarError", "LicenseError", "AuditError",
            "ProvenanceError", "QualityGateError", "BatchScriptError", "PoolError", "ApiKeyError"} <= names  # fmt: skip
    for error in errors:
        assert error.exit_code in (2, 3, 4) and 400 <= error.http_status < 600 and error.code, error
    assert _status("LicenseError", errors) == 403 and _exit("QualityGateError", errors) == 4
    assert _status("ModelError", errors) == 503 and _exit("BatchJobsFailedError", errors) == 4


def _status(name: str, errors: list[type]) -> int:
    return next(e for e in errors if e.__name__ == name).http_status


def _exit(name: str, errors: list[type]) -> int:
    return next(e for e in errors if e.__name__ == name).exit_code


def test_no_name_comparisons_of_exception_types_in_the_code():
    for path in REPO.glob("*/**/*.py"):
        if ".venv" in path.parts or "tests" in path.parts:
            continue
        assert "type(exc).__name__ ==" not in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("video:\n  fps: twenty\n", "video.fps: Input should be a valid integer"),
        ("motion:\n  blink_interval_s: 3\n", "motion.blink_interval_s: Input should be a valid tuple (got 3)"),
        ("video:\n  fpss: 25\n", "video.fpss: unknown key"),
        ("vido:\n  fps: 25\n", "vido: unknown key"),
        ("video:\n  crf: 90\n", "video.crf: Input should be less than or equal to 51 (got 90)"),
        ("video:\n  width: 1001\n", "video.width: must be even"),
        ("quality:\n  fallback: maybe\n", "quality.fallback: Input should be 'none', 'reduced_motion' or 'still'"),
        ("label:\n  opacity: 0.1\n", "label.opacity: Input should be greater than or equal to 0.6"),
        ("factory:\n  heartbeat_seconds: 60\n", "factory: crashed_after_seconds must be at least twice"),
        ("video: [1, 2\n", "not valid YAML"),
    ],
)
def test_bad_settings_are_one_line_naming_file_and_key(tmp_path, yaml_text, expected):
    config_file = tmp_path / "my.yaml"
    config_file.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file)
    message = str(caught.value)
    assert message.startswith(str(config_file)) and expected in message and "\n" not in message, message


def test_the_cli_reports_bad_settings_in_one_line_with_exit_2(tmp_path, dhf_home):
    config_file = tmp_path / "my.yaml"
    config_file.write_text("motion:\n  blink_interval_s: 3\n", encoding="utf-8")
    output = tmp_path / "x.mp4"
    # --config works before and after the command
    for args in (["--config", str(config_file), "render", "Hi.", "--avatar", "sample", "--lang", "en", "-o",
                  str(output)],
                 ["render", "Hi.", "--avatar", "sample", "--lang", "en", "-o", str(output), "--config",
                  str(config_file)]):  # fmt: skip
        result = run_dhf(args, dhf_home)
        assert_refused(result, f"{config_file}: motion.blink_interval_s:", output)


def test_settings_are_frozen_and_copies_are_validated():
    settings = load_settings()
    with pytest.raises(ValueError):
        settings.video.fps = 30  # type: ignore[misc]
    assert settings.with_section("quality", fallback="still").quality.fallback == "still"
    with pytest.raises(ValueError):
        settings.with_section("quality", fallback="sometimes")


def test_importing_the_audit_log_or_the_cli_configures_nothing():
    """No import has side effects: the environment is untouched and Prefect is not even imported."""
    code = (
        "import os, sys; before = dict(os.environ)\n"
        "import governance.audit, pipeline.run, cli.main, flows\n"
        "after = {k: v for k, v in os.environ.items() if k != 'LD_LIBRARY_PATH'}  # set by OpenCV's own import\n"
        "assert after == {k: v for k, v in before.items() if k != 'LD_LIBRARY_PATH'}, set(after) ^ set(before)\n"
        "assert 'prefect' not in sys.modules and 'fastapi' not in sys.modules, 'imported too early'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DO_NOT_TRACK"))}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_render_report_is_the_typed_model(rendered):
    report = RenderReport.model_validate(rendered.report)
    assert report.frames == rendered.report["frames"] > 0 and report.quality.passed
    assert report.settings.video.fps == 25 and report.driver.source == "synthetic"
    public = json.dumps(report.without_paths().model_dump(mode="json"))
    assert str(rendered.video.parent) not in public and report.provenance.content_id in public
