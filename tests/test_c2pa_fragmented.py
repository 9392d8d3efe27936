"""C2PA on a streamed answer's fragmented MP4 (issue 30): real ffmpeg HLS segments (init + fragments), the
init segment signed with `sign_init_segment`, read back with the same reader as every MP4, tampered, and
played by ffmpeg and by Chromium's Media Source Extensions with the C2PA box in place.

What c2pa-python 0.38.1 cannot do is pinned too: its reader does not take our fragments as covered by the
init segment's manifest (no Merkle binding: the SDK's fragment signing is not in the Python bindings). If a
later version binds fragments, `test_the_fragments_are_not_covered_by_the_init_manifest` fails: then sign
the fragments too (docs/decisions.md, "C2PA on a streamed answer")."""

from __future__ import annotations

import copy
import functools
import http.server
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from flows.local_cluster import free_port
from governance.c2pa_signing import (
    C2PA_UUID,
    INIT_BINDING,
    TRAINED_ALGORITHMIC_MEDIA,
    ProvenanceError,
    manifest_definition,
    read_manifest,
    sign_init_segment,
    sign_mp4,
    signing_identity,
    top_level_boxes,
    trust_anchors,
)
from media.video import ffmpeg_binary

FPS = 25
SEGMENT_FRAMES = 12
SEGMENTS = 3
CONTENT_ID = "c0ffee" * 5 + "00"


def _make_hls(folder: Path) -> tuple[Path, list[Path]]:
    """fMP4 HLS like the stream encoder's: H.264 (a keyframe every segment) + AAC, 3 segments of 12 frames."""
    folder.mkdir(parents=True)
    frames = SEGMENT_FRAMES * SEGMENTS
    command = [
        ffmpeg_binary(), "-v", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={FPS}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=24000",
        "-frames:v", str(frames), "-t", str(frames / FPS),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
        "-g", str(SEGMENT_FRAMES), "-force_key_frames", f"expr:eq(mod(n,{SEGMENT_FRAMES}),0)",
        "-c:a", "aac", "-b:a", "64k",
        "-f", "hls", "-hls_time", str(SEGMENT_FRAMES / FPS), "-hls_segment_type", "fmp4",
        "-hls_fmp4_init_filename", "run0_init.mp4", "-hls_segment_filename", str(folder / "run0_%05d.m4s"),
        "-hls_playlist_type", "vod", "-hls_flags", "independent_segments", str(folder / "run0.m3u8"),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    return folder / "run0_init.mp4", sorted(folder.glob("run0_*.m4s"))


def _definition(settings) -> dict:
    generation = {"ai_generated": True, "content_id": CONTENT_ID, "visible_label": settings.label.text}
    return manifest_definition("answer.mp4", generation, settings)


def _frame_hashes(playlist: Path, stream: str) -> list[str]:
    command = [ffmpeg_binary(), "-v", "error", "-i", str(playlist), "-map", f"0:{stream}", "-f", "framemd5", "-"]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [line.rsplit(",", 1)[1].strip() for line in output.splitlines() if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def unsigned(tmp_path_factory) -> tuple[Path, list[Path]]:
    return _make_hls(tmp_path_factory.mktemp("fmp4") / "enc")


@pytest.fixture(scope="module")
def signed(unsigned, settings, tmp_path_factory) -> tuple[Path, list[Path]]:
    """A copy of the segments whose init segment is signed (the unsigned set stays for comparisons)."""
    folder = tmp_path_factory.mktemp("fmp4-signed") / "enc"
    shutil.copytree(unsigned[0].parent, folder)
    init = folder / unsigned[0].name
    sign_init_segment(init, _definition(settings), signing_identity(settings))
    return init, sorted(folder.glob("run0_*.m4s"))


def test_the_encoder_output_is_an_init_segment_and_fragments(unsigned):
    init, fragments = unsigned
    assert [kind for kind, _ in top_level_boxes(init)] == ["ftyp", "moov"]
    assert len(fragments) == SEGMENTS
    assert all("moof" in [kind for kind, _ in top_level_boxes(f)] for f in fragments)


def test_a_signed_init_segment_reads_back_trusted_and_says_what_it_binds(signed, unsigned, settings):
    init, _ = signed
    boxes = top_level_boxes(init)
    assert [kind for kind, _ in boxes] == ["ftyp", "uuid", "moov"] and boxes[1][1] == C2PA_UUID
    # The moov (what a player parses) is byte for byte the encoder's.
    original = unsigned[0].read_bytes()
    moov = original[int.from_bytes(original[:4], "big") :]
    assert init.read_bytes().endswith(moov) and len(moov) > 500
    reading = read_manifest(init, settings)
    assert reading.status == "valid" and reading.state == "Trusted" and not reading.problems, reading
    assert reading.digital_source_type == TRAINED_ALGORITHMIC_MEDIA and reading.test_signer
    assert reading.generation["content_id"] == CONTENT_ID
    assert reading.generation["stream_init"] == {"binding": INIT_BINDING}


def test_signing_leaves_the_callers_definition_as_it_was(settings, unsigned, tmp_path):
    init = tmp_path / "run0_init.mp4"
    shutil.copy(unsigned[0], init)
    definition = _definition(settings)
    before = copy.deepcopy(definition)
    sign_init_segment(init, definition, signing_identity(settings))
    assert definition == before


def test_players_decode_the_same_frames_and_samples_with_the_signed_init(signed, unsigned):
    for stream in ("v", "a"):
        plain = _frame_hashes(unsigned[0].parent / "run0.m3u8", stream)
        marked = _frame_hashes(signed[0].parent / "run0.m3u8", stream)
        assert plain == marked and len(set(plain)) > 1
    assert len(_frame_hashes(signed[0].parent / "run0.m3u8", "v")) == SEGMENT_FRAMES * SEGMENTS


def test_a_tampered_init_segment_reads_back_invalid(signed, settings, tmp_path):
    data = bytearray(signed[0].read_bytes())
    position = data.index(b"mvhd") + 20  # the movie timescale: outside the C2PA box, covered by its hash
    data[position] ^= 0x01
    tampered = tmp_path / "run0_init.mp4"
    tampered.write_bytes(bytes(data))
    reading = read_manifest(tampered, settings)
    assert reading.status == "invalid" and any("mismatch" in problem for problem in reading.problems), reading


def test_the_fragments_are_not_covered_by_the_init_manifest(signed, settings):
    """The library's own fragment check (`Reader.with_fragment`) finds the init manifest's BMFF hash does not
    cover a fragment: a verifier cannot mistake a streamed fragment for a signed one."""
    import c2pa

    init, fragments = signed
    config = {"verify": {"verify_trust": True}, "trust": {"trust_anchors": trust_anchors(settings)}}
    with init.open("rb") as main, c2pa.Reader("video/mp4", main, context=c2pa.Context.from_dict(config)) as reader:
        assert reader.get_validation_state() == "Trusted"
        with init.open("rb") as again, fragments[0].open("rb") as fragment:
            reader.with_fragment("video/mp4", again, fragment)
            codes = [status.get("code") for status in json.loads(reader.json()).get("validation_status") or []]
            assert reader.get_validation_state() == "Invalid" and "assertion.bmffHash.mismatch" in codes, codes


@pytest.mark.parametrize("case", ["fragment", "empty", "truncated", "already signed", "missing"])
def test_what_is_not_a_complete_unsigned_init_segment_is_refused_untouched(case, signed, unsigned, settings, tmp_path):
    target = tmp_path / "run0_init.mp4"
    if case == "fragment":
        shutil.copy(unsigned[1][0], target)
    elif case == "empty":  # what ffmpeg's HLS muxer leaves until the first segment closes
        target.write_bytes(b"")
    elif case == "truncated":
        target.write_bytes(unsigned[0].read_bytes()[:-100])
    elif case == "already signed":
        shutil.copy(signed[0], target)
    before = target.read_bytes() if target.exists() else None
    with pytest.raises(ProvenanceError) as raised:
        sign_init_segment(target, _definition(settings), signing_identity(settings))
    message = str(raised.value)
    assert "\n" not in message and str(target) in message
    expected = "already carries a C2PA manifest" if case == "already signed" else "not a complete fMP4 init segment"
    assert expected in message, message
    assert (target.read_bytes() if target.exists() else None) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if case == "missing" else [target.name])


def test_the_answer_mp4_joined_from_the_signed_segments_is_signed_afresh(signed, unsigned, settings, tmp_path):
    """The published MP4 is remuxed from init + fragments by stream copy: the init's manifest does not ride
    along (it would bind the wrong bytes), the frames are the segments', and `sign_mp4` then signs it."""
    joined, answer = tmp_path / "joined.mp4", tmp_path / "answer.mp4"
    joined.write_bytes(b"".join(path.read_bytes() for path in [signed[0], *signed[1]]))
    command = [ffmpeg_binary(), "-v", "error", "-i", str(joined), "-c", "copy", "-movflags", "+faststart", str(answer)]
    subprocess.run(command, check=True, capture_output=True)
    assert not any(extended == C2PA_UUID for _, extended in top_level_boxes(answer))
    assert read_manifest(answer, settings).status == "absent"
    assert _frame_hashes(answer, "v") == _frame_hashes(unsigned[0].parent / "run0.m3u8", "v")
    sign_mp4(answer, _definition(settings), signing_identity(settings), [])
    reading = read_manifest(answer, settings)
    assert reading.status == "valid" and reading.generation["content_id"] == CONTENT_ID, reading
    assert "stream_init" not in reading.generation


def _avc_codec(init: Path) -> str:
    data = init.read_bytes()
    at = data.index(b"avcC") + 5  # after the box type and configurationVersion
    return "avc1." + data[at : at + 3].hex().upper()


PAGE = """<html><body><video id=v muted></video><script>
window.result = null;
(async () => {
  try {
    const source = new MediaSource(), video = document.getElementById('v');
    video.src = URL.createObjectURL(source);
    await new Promise(ok => source.addEventListener('sourceopen', ok, {once: true}));
    const buffer = source.addSourceBuffer('video/mp4; codecs="CODEC, mp4a.40.2"');
    for (const name of NAMES) {
      buffer.appendBuffer(await (await fetch(name)).arrayBuffer());
      await new Promise((ok, bad) => { buffer.onupdateend = ok; buffer.onerror = bad; });
    }
    source.endOfStream();
    await video.play();
    const start = performance.now();
    while (video.currentTime < 0.5 && performance.now() - start < 5000) await new Promise(ok => setTimeout(ok, 50));
    window.result = {buffered: buffer.buffered.end(0), time: video.currentTime, width: video.videoWidth};
  } catch (error) {
    window.result = {error: String(error), media: document.getElementById('v').error?.message || null};
  }
})();
</script></body></html>"""


def test_chromium_plays_the_segments_with_the_signed_init(signed):
    """Media Source Extensions (what hls.js feeds) accept the init segment with its C2PA box."""
    from tests.reliability.chromium import Chromium

    init, fragments = signed
    names = [init.name] + [f.name for f in fragments]
    page = PAGE.replace("CODEC", _avc_codec(init)).replace("NAMES", json.dumps(names))
    (init.parent / "index.html").write_text(page)
    handler = functools.partial(QuietHandler, directory=str(init.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Chromium() as browser:
            browser.open(f"http://127.0.0.1:{server.server_address[1]}/index.html")
            result = browser.wait_for("window.result", timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert "error" not in result, result
    assert result["width"] == 320 and result["time"] >= 0.5, result
    assert result["buffered"] == pytest.approx(SEGMENT_FRAMES * SEGMENTS / FPS, abs=0.05), result


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test's output is the assertions, not an access log
        pass


def test_signing_an_init_segment_is_cheap_enough_for_the_first_release(unsigned, settings, tmp_path):
    """It runs between the first segment and its release, so it adds to the time to first segment."""
    identity, definition = signing_identity(settings), _definition(settings)
    durations = []
    for run in range(5):
        init = tmp_path / f"run{run}_init.mp4"
        shutil.copy(unsigned[0], init)
        start = time.perf_counter()
        sign_init_segment(init, definition, identity)
        durations.append(time.perf_counter() - start)
    assert sorted(durations)[2] < 0.1, durations  # median; measured ~10 ms on the 2-core machine
