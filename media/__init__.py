"""ffmpeg/ffprobe I/O shared by every stage: stream frames and audio in and out, probe files.

One layer above `config/`: stages import it, it imports no stage. Errors are `MediaError`s whose
message names the file and what to do.
"""
