"""Typed settings loaded from the YAML files in this folder, the error base, and atomic file helpers.

The bottom layer: every other package may import it, it imports none of them. Stages receive their
options as these frozen models; nothing reads YAML or the environment on its own, so a test or a
batch run can hand each render its own configuration.
"""

from config.errors import ConfigError, DhfError
from config.loader import CONFIG_DIR, load_settings, load_visemes_table, load_voices
from config.settings import (
    ApiSettings,
    DriverVideoSettings,
    EnrollmentSettings,
    FaceSettings,
    FactorySettings,
    LabelSettings,
    MotionSettings,
    PathSettings,
    PostSettings,
    ProvenanceSettings,
    QualitySettings,
    Settings,
    TextSettings,
    VideoSettings,
    VoiceTemplate,
)

__all__ = [
    "CONFIG_DIR",
    "ApiSettings",
    "ConfigError",
    "DhfError",
    "DriverVideoSettings",
    "EnrollmentSettings",
    "FaceSettings",
    "FactorySettings",
    "LabelSettings",
    "MotionSettings",
    "PathSettings",
    "PostSettings",
    "ProvenanceSettings",
    "QualitySettings",
    "Settings",
    "TextSettings",
    "VideoSettings",
    "VoiceTemplate",
    "load_settings",
    "load_visemes_table",
    "load_voices",
]
