"""Issue 27 item 1: the avatar photo is analysed once per avatar version, for the engine and the monitors.

Measured for real on the bundled sample (real detector, landmarker, identity model and matte): how
often a render detects a face on the photo, that the analysis the monitors now read equals what they
measured on the photo themselves before, and that a new version, photo or enrollment is analysed anew.
"""

from __future__ import annotations

import shutil
from dataclasses import fields, replace

import cv2
import numpy as np
import pytest
from conftest import own_home
from test_scenes import small_config

from avatars.analysis import analysis_path, avatar_analysis
from avatars.library import AvatarLibrary
from config import load_settings
from media.video import probe, read_frames
from pipeline import stages
from pipeline.request import RenderRequest
from pipeline.run import render_video
from quality.color import skin_lab
from quality.inline import monitor_setup
from vision.analysis import FaceAnalyser, read_image
from vision.avatar_analysis import AnalysisFormatError, AvatarAnalysis
from vision.framing import apply_framing
from vision.identity import IdentityEmbedder, identity_distance
from vision.models import ModelRegistry


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home of this module's own: its analysis cache starts empty, so every analysis is counted."""
    return own_home(tmp_path_factory.mktemp("analysis-home"))


@pytest.fixture(scope="module")
def small(home, tmp_path_factory):
    return load_settings(small_config(tmp_path_factory.mktemp("analysis-config")), home=home)


@pytest.fixture(scope="module")
def sample(small):
    return AvatarLibrary.from_settings(small.paths).get("sample")


@pytest.fixture
def photo_analyses(monkeypatch):
    """Counts the face detections on a single photo (`FaceAnalyser.single_face`): frames of a video
    are tracked, never detected this way, so each call is one analysis of a photo."""
    calls = []
    original = FaceAnalyser.single_face

    def counted(self, image, source="image"):
        calls.append(source)
        return original(self, image, source)

    monkeypatch.setattr(FaceAnalyser, "single_face", counted)
    return calls


def analyses_cached(settings) -> list:
    folder = settings.paths.cache / "avatars"
    return sorted(folder.glob("*.npz")) if folder.is_dir() else []


def test_a_render_analyses_the_photo_once_and_a_second_render_not_at_all(small, sample, photo_analyses, tmp_path):
    """Engine and monitors share the avatar's one analysis: the first render of an avatar version
    detects the face on its photo once (before: twice, the monitors again), the second not at all
    (before: once, the monitors again on every render)."""
    assert not analyses_cached(small)
    for run, expected in ((1, 1), (2, 1)):
        request = RenderRequest(text="Hello there.", avatar_id="sample", language="en",
                                output=tmp_path / f"run{run}.mp4", scene="social")  # fmt: skip
        render_video(request, small)
        assert len(photo_analyses) == expected, (run, photo_analyses)
    assert len(analyses_cached(small)) == 1


def test_monitors_compare_with_what_they_measured_on_the_photo_before(small, sample, tmp_path):
    """The monitors' references read from the analysis equal those measured on the photo the way the
    monitors did before (detect, embed, cheek colour): identity distances of rendered frames agree
    to 1e-6 and the skin reference is the same colour."""
    registry = ModelRegistry(small.paths.models)
    analyser = FaceAnalyser(registry, small.face.detector_min_score)
    embedder = IdentityEmbedder(registry)
    image = read_image(sample.photo, small.images.max_pixels)
    face = analyser.single_face(image)
    before_embedding, before_lab = embedder.embed(image, face.landmarks), skin_lab(image, face.landmarks)

    setup = monitor_setup(sample, small)
    np.testing.assert_allclose(setup.identity.reference, before_embedding, atol=1e-6, rtol=0)
    np.testing.assert_allclose(setup.reference_lab, before_lab, atol=1e-6, rtol=0)

    video = tmp_path / "frames.mp4"
    render_video(RenderRequest(text="Bob, a map.", avatar_id="sample", language="en", output=video, scene="social"),
                 small)  # fmt: skip
    info = probe(video)
    distances = []
    for index, frame in enumerate(read_frames(video, info.width, info.height)):
        if index % 5:
            continue
        found = analyser.largest_face(frame)
        if found is not None:
            seen = embedder.embed(frame, found.landmarks)
            distances.append(
                (identity_distance(seen, before_embedding), identity_distance(seen, setup.identity.reference))
            )
    assert len(distances) >= 3
    assert max(abs(before - now) for before, now in distances) <= 1e-6, distances


def test_the_engine_gets_the_photo_framed_as_before(small, sample):
    """The work image the engine animates is the photo read and framed now, to the bit (what the
    render path computed on every render before the analysis held it)."""
    analysis = stages.avatar_stage(sample, small)
    work, landmarks = analysis.work_image_and_landmarks(sample)
    image = read_image(sample.photo, small.images.max_pixels)
    expected_work, expected_landmarks = apply_framing(image, analysis.landmarks, analysis.framing())
    assert np.array_equal(work, expected_work)
    assert np.array_equal(landmarks, expected_landmarks)
    work[:] = 0  # the engine may draw on its copy; the shared analysis is not touched
    assert analysis.work_image.any()
    assert analysis.person_mask() is not None and analysis.person_mask().shape == work.shape[:2]


def test_saved_analysis_loads_equal_and_another_version_is_refused(small, sample, tmp_path):
    analysis = avatar_analysis(sample, small)
    path = tmp_path / "analysis.npz"
    analysis.save(path)
    loaded = AvatarAnalysis.load(path)
    assert loaded.cache_hit
    for field in fields(AvatarAnalysis):
        value, again = getattr(analysis, field.name), getattr(loaded, field.name)
        if field.name != "cache_hit":
            assert np.array_equal(value, again) if isinstance(value, np.ndarray) else value == again, field.name
    with np.load(path) as data:
        stored = dict(data)
    np.savez(path, **(stored | {"version": np.asarray(3)}))
    with pytest.raises(AnalysisFormatError, match="version 4"):
        AvatarAnalysis.load(path)


def test_a_damaged_cache_file_is_analysed_again(small, sample, photo_analyses):
    """A cut-off file (a full disk, a copy interrupted) or a foreign one is analysed again and replaced."""
    avatar_analysis(sample, small)
    path = analysis_path(sample, small)
    for damage in (path.read_bytes()[: path.stat().st_size // 2], b"not an npz"):
        path.write_bytes(damage)
        again = avatar_analysis(sample, small)
        assert not again.cache_hit
        assert AvatarAnalysis.load(path).cache_hit
    assert len(photo_analyses) == 2


def test_a_new_version_photo_or_enrollment_is_analysed_anew(small, sample, photo_analyses, tmp_path):
    first = avatar_analysis(sample, small)
    assert avatar_analysis(sample, small).cache_hit

    newer = replace(sample, version=sample.version + 1)
    assert not avatar_analysis(newer, small).cache_hit
    assert avatar_analysis(newer, small).cache_hit
    assert len(photo_analyses) == (0 if first.cache_hit else 1) + 1

    folder = tmp_path / "edited"
    shutil.copytree(sample.folder, folder)
    photo = folder / sample.photo.name
    image = cv2.imread(str(photo))
    image[0, 0] = 255 - image[0, 0]  # one corner pixel: the same face, another file
    cv2.imwrite(str(photo), image)
    edited = replace(sample, folder=folder, photo=photo)
    assert not avatar_analysis(edited, small).cache_hit

    enrolled = np.linspace(-0.1, 0.1, 128, dtype=np.float32)  # an enrolled identity wins over the photo's
    np.savez(folder / "enrollment.npz", embedding=enrolled)
    analysis = avatar_analysis(edited, small)
    assert not analysis.cache_hit
    assert np.array_equal(analysis.identity, enrolled)
    assert len(analyses_cached(small)) >= 4
