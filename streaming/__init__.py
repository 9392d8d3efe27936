"""Streamed answers: an answer rendered sentence by sentence into HLS (fragmented-MP4 segments), each
segment released to the viewer only after the quality gate scored its frames, then published as the
usual MP4 with captions and report. Layer: above pipeline/ (it reuses the render's stages), below
flows/ and api/ (which run and serve it)."""
