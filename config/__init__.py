"""Typed settings loaded from the YAML files in this folder.

Every stage receives its options as one of these frozen dataclasses; nothing reads YAML or the
environment on its own, so a test or a batch run can hand each render its own configuration.
"""

from config.loader import (
    CONFIG_DIR,
    ApiSettings,
    DriverVideoSettings,
    EnrollmentSettings,
    FactorySettings,
    LabelSettings,
    MotionSettings,
    PathSettings,
    PostSettings,
    QualitySettings,
    Settings,
    TextSettings,
    VideoSettings,
    VoiceTemplate,
    load_settings,
    load_visemes_table,
    load_voices,
)

__all__ = [
    "CONFIG_DIR",
    "ApiSettings",
    "DriverVideoSettings",
    "EnrollmentSettings",
    "FactorySettings",
    "LabelSettings",
    "MotionSettings",
    "PathSettings",
    "PostSettings",
    "QualitySettings",
    "Settings",
    "TextSettings",
    "VideoSettings",
    "VoiceTemplate",
    "load_settings",
    "load_visemes_table",
    "load_voices",
]
