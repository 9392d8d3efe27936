"""Quality monitors: measure any talking-head MP4 from its own pixels and sound, and judge it.

Every monitor implements one contract (`monitor.Monitor`: observe each frame → per-frame series →
scores → failures) in its own module, found by its settings section (`registry`); `observe` decodes
the video once, tracks the face and hands each frame to every monitor; `gate` scores each monitor and
judges it against its own thresholds (`quality.<monitor>` in config/quality.yaml); `evaluate` chains
them. Measuring never looks at a threshold it is judged by, so a new gate can be tried on old
measurements.
"""
