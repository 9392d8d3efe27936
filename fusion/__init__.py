"""Fusion engine: face analysis, processors and frame I/O that turn a motion track and an avatar into frames."""
