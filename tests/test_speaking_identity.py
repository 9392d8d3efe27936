"""Issue 25: speaking enrollment checks the whole recording, not only its reference frame.

Hostile recordings are built from the generated speaking recording (tests/speaking_recording.py,
11 s: 2 s quiet, then speech): from 2.4 s (just after the quiet stretch the reference frame comes
from) the face becomes another person (the same head with LFW face 94 over its face, speaking the
same track, identity distance ~0.67 like the testers' recording), one frame is that person, or a
second face appears. Each is refused with one line naming the first offending frame's time stamp,
and the library is left as it was."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import own_home
from licences import write_license

from config import load_settings
from media.video import read_frames
from tests.conftest import run_dhf
from tests.speaking_recording import Recording, make_recording, rewrite, stranger_portrait
from tests.test_personal_avatars import LIMITS
from vision.analysis import FaceAnalyser
from vision.models import ModelRegistry

FPS = 25
LIMIT = 0.6  # enrollment.speaking.max_identity_distance (config/default.yaml)


@pytest.fixture(scope="module")
def home(tmp_path_factory, dhf_home) -> Path:
    return own_home(tmp_path_factory.mktemp("identity-home"))


@pytest.fixture(scope="module")
def config(home) -> Path:
    path = home / "limits.yaml"
    path.write_text(yaml.safe_dump(LIMITS))
    return path


@pytest.fixture(scope="module")
def recordings(home, config, tmp_path_factory) -> tuple[Recording, Recording]:
    """The sample speaking, and the same head with another person's face speaking the same track."""
    settings = load_settings(config, home=home)
    folder = tmp_path_factory.mktemp("recordings")
    stranger = folder / "stranger.png"
    cv2.imwrite(str(stranger), stranger_portrait(FaceAnalyser(ModelRegistry(settings.paths.models))))
    own = make_recording(settings, folder / "own")
    other = make_recording(settings, folder / "other", photo=stranger)
    assert other.track.frame_count == own.track.frame_count
    return own, other


def from_other(other: Recording, frames: set[int] | range):
    """An edit that takes the frames in `frames` from the other person's recording (read in step:
    `rewrite` edits every frame in order)."""
    theirs = read_frames(other.path, fps=FPS)

    def edit(index: int, frame: np.ndarray) -> np.ndarray:
        their_frame = next(theirs)
        return their_frame if index in frames else frame

    return edit


def second_face(start: int):
    """An edit that shows a second, smaller face (the person's own, from the frame) in the top left
    corner from frame `start` on: two faces side by side."""

    def edit(index: int, frame: np.ndarray) -> np.ndarray:
        if index < start:
            return frame
        out = frame.copy()
        small = cv2.resize(frame[60:300, 112:336], (150, 160), interpolation=cv2.INTER_AREA)
        out[10:170, 0:150] = small
        return out

    return edit


@pytest.mark.parametrize(
    ("case", "first_frame", "stamp", "message"),
    [
        # -m slow: the default run keeps the one spliced frame, the harder case of the same message
        pytest.param(
            "another-person", 60, "00:02.4", "is another person than the reference frame", marks=pytest.mark.slow
        ),
        ("one-spliced-frame", 80, "00:03.2", "is another person than the reference frame"),
        ("second-face", 60, "00:02.4", "a second face at"),
    ],
)
def test_a_recording_that_changes_person_is_refused_at_the_frame(
    case, first_frame, stamp, message, recordings, home, config, tmp_path
):
    """Only the reference frame (~1 s, in the quiet stretch) used to be checked: all three were
    enrolled. Now the one line names the first offending frame (the check reads every bank frame,
    so within one frame: one spliced frame at 3.2 s falls between the samples of any 0.5 s grid
    that starts at 0)."""
    own, other = recordings
    edit = {
        "another-person": from_other(other, range(first_frame, own.track.frame_count)),
        "one-spliced-frame": from_other(other, {first_frame}),
        "second-face": second_face(first_frame),
    }[case]
    hostile = rewrite(own, tmp_path / f"{case}.mp4", edit)
    library = home / "avatars"
    before = sorted(str(p.relative_to(home)) for p in library.rglob("*")) if library.is_dir() else []
    license_path = write_license(tmp_path / case, case)
    result = run_dhf(["--config", str(config), "avatar", "add", str(hostile), "--id", case,
                      "--license", str(license_path), "--speaking"], home)  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert f"at {stamp}" in lines[0], lines[0]  # frame 60 is 2.40 s, frame 80 is 3.20 s
    if "another person" in message:
        found = re.search(r"identity distance ([\d.]+), limit ([\d.]+)", lines[0])
        distance, limit = float(found[1]), float(found[2])
        assert limit == LIMIT and distance > limit, lines[0]
        assert "reference frame at 00:0" in lines[0]  # the quiet stretch is the first 2 s
    after = sorted(str(p.relative_to(home)) for p in library.rglob("*")) if library.is_dir() else []
    assert [p for p in after if case in p] == [], after  # no version, no staging folder, no lock left
    assert [p for p in after if p not in before] == [], after


def test_clock_reads_minutes_seconds_and_tenths():
    from avatars.recording_identity import clock

    assert [clock(s) for s in (0, 2.4, 3.2, 59.96, 61.25, 754.0)] == [
        "00:00.0", "00:02.4", "00:03.2", "01:00.0", "01:01.2", "12:34.0",
    ]  # fmt: skip


def test_a_small_second_face_in_a_1080p_recording_is_found_within_one_search_step(home, config, tmp_path):
    """A person in the background, ~150 px wide in 1080p from 1.12 s: the whole-frame detector does not
    see it (it squeezes the frame to 128 px); the tiled search every 0.5 s does, and the refusal names
    the first searched frame that shows it (at most one step late)."""
    from avatars.errors import EnrollmentError
    from avatars.recording_identity import check_whole_recording
    from media.video import EncodeOptions, VideoWriter
    from tests.speaking_recording import SAMPLE
    from vision.identity import IdentityEmbedder

    settings = load_settings(config, home=home)
    registry = ModelRegistry(settings.paths.models)
    analyser, embedder = FaceAnalyser(registry, settings.face.detector_min_score), IdentityEmbedder(registry)
    portrait = cv2.resize(cv2.imread(str(SAMPLE)), (1080, 1080), interpolation=cv2.INTER_CUBIC)
    plain = np.full((1080, 1920, 3), 170, np.uint8)
    plain[:, 420:1500] = portrait
    crowded = plain.copy()
    crowded[40:250, 40:250] = cv2.resize(portrait[120:620, 280:780], (210, 210), interpolation=cv2.INTER_AREA)
    assert len(analyser.detector.detect(crowded)) == 1  # the whole-frame pass alone misses it
    clip = tmp_path / "background.mp4"
    with VideoWriter(clip, 1920, 1080, EncodeOptions(fps=FPS, crf=18)) as writer:
        for index in range(50):
            writer.write(crowded if index >= 28 else plain)
    reference = embedder.embed(plain, analyser.single_face(plain).landmarks)
    with pytest.raises(EnrollmentError, match="a second face at") as refused:
        check_whole_recording(clip, clip.name, FPS, {}, reference, 0, analyser, embedder, settings.enrollment.speaking)
    minutes, seconds = re.search(r"at (\d\d):(\d\d\.\d)", str(refused.value)).groups()
    assert 28 / FPS <= int(minutes) * 60 + float(seconds) <= 28 / FPS + 0.5 + 0.05, refused.value
