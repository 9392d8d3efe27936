"""Quality monitors: measure any talking-head MP4 from its own pixels and sound, and judge it.

`observe` decodes the video once and records per-frame observations; one small module per monitor
turns them into scores (`lipsync`, `identity`, `pose`, `stability`, `color`); `gate` compares the
scores with the thresholds of `config/quality.yaml`; `evaluate` chains the three. Measuring never
looks at a threshold it is judged by, so a new gate can be tried on old measurements.
"""
