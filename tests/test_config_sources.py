"""Where settings come from (issue 28): `$DHF_HOME/config.yaml`, `DHF_CONFIG`, `--config` and
`DHF_<SECTION>__<KEY>` variables, merged in that order over the packaged defaults, voices and scenes
included; and a bad or missing source named in one line. `load_settings` takes the environment as an
argument, so most checks need no process; three run the real CLI to show the user's view."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import DHF, REPO, assert_refused

from config import CONFIG_DIR, ConfigError, load_settings, load_voices


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def voice(rate: int) -> dict:
    return {"language": "en", "espeak_voice": "en-us", "rate": rate}


def test_each_layer_wins_over_the_ones_before_it_key_by_key(tmp_path):
    home = tmp_path / "home"
    site = {"video": {"fps": 20, "crf": 21, "preset": "fast", "audio_bitrate": "96k"},
            "voices": {"site": voice(150), "mine": voice(151)}, "default_voice": {"en": "site"}}  # fmt: skip
    write(home / "config.yaml", site)
    deployment = write(
        tmp_path / "deploy.yaml", {"video": {"crf": 22, "preset": "slow"}, "voices": {"mine": voice(152)}}
    )
    job = write(tmp_path / "job.yaml", {"video": {"preset": "medium", "audio_bitrate": "192k"}})
    environ = {"DHF_CONFIG": str(deployment), "DHF_VIDEO__AUDIO_BITRATE": "64k"}
    settings = load_settings(job, home=home, environ=environ)
    video = settings.video
    assert (video.fps, video.crf, video.preset, video.audio_bitrate) == (20, 22, "medium", "64k")
    voices, defaults = load_voices(settings)
    assert (voices["site"].rate, voices["mine"].rate, defaults["en"]) == (150, 152, "site")
    assert "en-us-female" in voices  # the packaged voices stay
    assert settings.paths.home == home
    # Without DHF_CONFIG and --config only the home file and the defaults remain.
    alone = load_settings(home=home, environ={})
    assert (alone.video.crf, alone.video.preset) == (21, "fast")
    # Without the home argument, DHF_HOME names the home whose config.yaml is read.
    assert load_settings(environ={"DHF_HOME": str(home)}).video.fps == 20
    assert load_settings(home=tmp_path / "elsewhere", environ={}).video.fps == 25


def test_environment_variables_are_nested_keys_read_as_yaml(tmp_path):
    environ = {
        "DHF_API__PORT": "9123",
        "DHF_MOTION__BLINK_INTERVAL_S": "[1.5, 4]",
        "DHF_GOVERNANCE__REVIEW": "off",  # YAML's false, taken as the word meant (as in a file)
        "dhf_quality__lipsync__min_correlation": "0.2",  # names are case-insensitive
        "DHF_SCENE__NAME": "web",
        "DHF_UNRELATED": "x",  # no __: not a setting
    }
    settings = load_settings(home=tmp_path, environ=environ)
    assert settings.api.port == 9123 and settings.motion.blink_interval_s == (1.5, 4.0)
    assert settings.governance.review == "off" and settings.quality.lipsync.min_correlation == 0.2
    assert settings.scene.name == "web"
    assert load_settings(home=tmp_path, environ={}).api.port == 8000


def test_where_the_api_listens_changes_no_content_hash(tmp_path):
    moved = load_settings(home=tmp_path, environ={"DHF_API__PORT": "9001", "DHF_API__HOST": "0.0.0.0"})
    assert moved.hashable() == load_settings(home=tmp_path, environ={}).hashable()
    assert moved.hashable() != load_settings(home=tmp_path, environ={"DHF_VIDEO__CRF": "30"}).hashable()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            {"DHF_VIDEO__FPS": "twenty"},
            "environment variable DHF_VIDEO__FPS: video.fps: Input should be a valid integer",
        ),
        ({"DHF_VIDO__FPS": "30"}, "environment variable DHF_VIDO__FPS: vido: unknown key"),
        ({"DHF_API____PORT": "1"}, "environment variable DHF_API____PORT: empty key"),
        (
            {"DHF_CONFIG": "{tmp}/gone.yaml"},
            "config file not found: {tmp}/gone.yaml; check the path given to DHF_CONFIG",
        ),
        (
            {"DHF_VOICES__X__ENGINE": "kokoro"},
            "environment variable DHF_VOICES__X__ENGINE: voices.x.language: Field required",
        ),
        ({"home": "video: {fps: twenty}"}, "{tmp}/config.yaml: video.fps: Input should be a valid integer"),
        (
            {"home": "voices: {x: {language: en, espeak_voice: en, style: a}}"},
            "{tmp}/config.yaml: voices.x: style applies",
        ),
        ({"home": "default_voice: {en: nobody}"}, "{tmp}/config.yaml: default_voice.en: voice 'nobody' is not defined"),
        ({"DHF_DEFAULT_VOICE__FR": "nobody"}, "environment variable DHF_DEFAULT_VOICE__FR: default_voice.fr: voice"),
    ],
)
def test_a_bad_source_is_one_line_naming_the_file_or_variable(tmp_path, source, expected):
    if "home" in source:
        (tmp_path / "config.yaml").write_text(source.pop("home"), encoding="utf-8")
    environ = {name: value.format(tmp=tmp_path) for name, value in source.items()}
    with pytest.raises(ConfigError) as raised:
        load_settings(home=tmp_path, environ=environ)
    assert str(raised.value).startswith(expected.format(tmp=tmp_path)) and "\n" not in str(raised.value), raised.value


def test_a_relative_scene_image_is_found_beside_the_file_that_names_it(tmp_path):
    brand = tmp_path / "brand"
    brand.mkdir()
    shutil.copy(CONFIG_DIR / "scenes" / "demo-bank-logo.png", brand / "logo.png")
    scene = {"width": 1080, "height": 1080, "logo": {"image": "logo.png"},
             "background": {"kind": "image", "image": "scenes/web-background.jpg"}}  # fmt: skip
    config = write(brand / "brand.yaml", {"scenes": {"kiosk": scene}})
    kiosk = load_settings(config, home=tmp_path, environ={}).scenes["kiosk"]
    assert Path(kiosk.logo.image) == brand / "logo.png"
    assert Path(kiosk.background.image) == CONFIG_DIR / "scenes" / "web-background.jpg"  # bundled: not beside it


# --- the user's view: the real CLI ---------------------------------------------------------------------------


def dhf(args: list[str], home: Path, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DHF_")} | {"DHF_HOME": str(home), **variables}
    return subprocess.run(DHF + args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_the_cli_finds_a_scene_and_its_logo_in_the_homes_config_yaml(dhf_home, tmp_path):
    """The home's config.yaml is read without any flag: its scene is known, and its logo (named
    relative to that file) is found and measured. The template puts the logo over the AI label, so
    the render is refused before any compute, with the layout's own message (not 'unknown scene' nor
    'logo image … does not exist')."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to(dhf_home / "models", target_is_directory=True)
    shutil.copy(CONFIG_DIR / "scenes" / "demo-bank-logo.png", home / "brand-logo.png")
    logo = {"image": "brand-logo.png", "corner": "top-right", "height": 0.1}
    write(home / "config.yaml", {"scenes": {"kiosk": {"width": 1080, "height": 1080, "logo": logo}}})
    out = tmp_path / "k.mp4"
    result = dhf(["render", "Hi.", "--avatar", "sample", "--lang", "en", "-o", str(out), "--scene", "kiosk"], home)
    assert_refused(result, "scene 'kiosk' (1080×1080): the logo", out)
    assert "overlaps the AI label" in result.stderr


def test_the_cli_names_a_missing_dhf_config_and_a_bad_variable(tmp_path):
    result = dhf(["audit", "list"], tmp_path, DHF_CONFIG=str(tmp_path / "gone.yaml"))
    assert result.returncode == 2 and result.stdout == "", result
    assert (
        result.stderr
        == f"dhf: error: config file not found: {tmp_path}/gone.yaml; check the path given to DHF_CONFIG\n"
    )
    result = dhf(["audit", "list"], tmp_path, DHF_VIDEO__CRF="90")
    assert (
        result.returncode == 2
        and "environment variable DHF_VIDEO__CRF: video.crf: Input should be less" in result.stderr
    )


def test_dhf_api_listens_on_the_port_of_dhf_api_port_over_the_homes_config(dhf_home, tmp_path):
    from flows.local_cluster import free_port

    home = tmp_path / "home"
    write(home / "config.yaml", {"api": {"port": free_port()}})
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DHF_", "PREFECT_API_URL"))}
    env |= {"DHF_HOME": str(home), "DHF_API__PORT": str(port), "DO_NOT_TRACK": "1"}
    log = tmp_path / "api.log"
    with log.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "cli.main", "api"], cwd=REPO, env=env, stdout=sink,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline, status = time.monotonic() + 90, None
        while time.monotonic() < deadline and status is None and process.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
            except httpx.HTTPError:
                time.sleep(0.3)
        assert status == 200, log.read_text()[-2000:]
        assert f"dhf API on http://127.0.0.1:{port} " in log.read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
