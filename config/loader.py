"""Load `config/*.yaml`, the user's config files and DHF_* variables into the typed settings of `config.settings`.

Why the bookkeeping of where each key came from: the defaults are merged from two packaged files,
up to three user files and the environment (`config.sources` says which, in which order), and a bad
value must be reported against the file or variable the user has to fix, with the key, in one line
(`my.yaml: video.fps: Input should be a valid integer (got 'twenty')`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from config.errors import ConfigError
from config.files import load_yaml
from config.settings import Settings, VoiceTemplate
from config.sources import HOME_VARIABLE, anchor_scene_images, environment_overrides, user_files

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_FILES = (CONFIG_DIR / "default.yaml", CONFIG_DIR / "quality.yaml")

# Key path → the file (or "environment variable DHF_…") that set it last.
Origins = dict[tuple[str, ...], Path | str]


def read_yaml(path: Path, given_by: str = "--config") -> dict[str, Any]:
    """A YAML file holding a mapping (empty file: empty mapping); ConfigError naming the file otherwise
    (a missing one also names what gave its path: `given_by`, the flag or the variable to fix)."""
    try:
        data = load_yaml(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}; check the path given to {given_by}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc}); save it as UTF-8 YAML") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({problem}); fix the indentation or quoting") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold a mapping of sections (e.g. `video:`) at the top level")
    return data


def _merge(base: dict[str, Any], override: dict[str, Any], source: Path | str, origins: Origins, prefix=()) -> dict:
    """Deep-merge `override` into `base`, recording for every key path the file that set it last."""
    merged = dict(base)
    for key, value in override.items():
        path = (*prefix, str(key))
        origins[path] = source
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value, source, origins, path)
        else:
            merged[key] = value
    return merged


def _origin(location: tuple[str, ...], origins: Origins) -> Path | str:
    for length in range(len(location), -1, -1):
        if location[:length] in origins:
            return origins[location[:length]]
    return DEFAULT_FILES[0]


def _one_line(error: ValidationError, origins: Origins, prefix: tuple[str, ...] = ()) -> str:
    """The first problem of a validation error as `file: section.key: message (got value)`."""
    first = error.errors()[0]
    location = (*prefix, *(str(part) for part in first["loc"]))
    key = ".".join(location) or "(top level)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key (a typo?); remove it or check the spelling against config/default.yaml"
    elif first["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    elif "input" in first and not isinstance(first["input"], dict | list):
        message += f" (got {first['input']!r})"
    return f"{_origin(location, origins)}: {key}: {message}"


def validate_model(model: type[BaseModel], data: dict[str, Any], origins: Origins, prefix=()) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, origins, prefix)) from None


def load_settings(
    override_file: Path | None = None, home: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Defaults from `config/default.yaml` and `quality.yaml`, then the user's files (`<home>/config.yaml`,
    the file named by DHF_CONFIG, `override_file`), then `DHF_<SECTION>__<KEY>` variables; each layer
    merged over the one before (see `config.sources`). `home` or DHF_HOME wins over `paths.home`, and
    names the home whose config.yaml is read (the packaged `paths.home` when neither is given).
    `environ` defaults to the process's environment; a test passes its own."""
    environ = os.environ if environ is None else environ
    origins: Origins = {}
    data: dict[str, Any] = {}
    for path in DEFAULT_FILES:
        data = _merge(data, read_yaml(path), path, origins)
    chosen_home = home or environ.get(HOME_VARIABLE)
    home_folder = Path(chosen_home or os.path.expanduser(str(data["paths"]["home"])))
    for file in user_files(override_file, home_folder, environ):
        own = anchor_scene_images(read_yaml(file.path, file.given_by), file.path.resolve().parent)
        data = _merge(data, own, file.path, origins)
    for variable, override in environment_overrides(environ):
        data = _merge(data, override, f"environment variable {variable}", origins)
    if chosen_home:
        data["paths"] = {**(data.get("paths") or {}), "home": str(chosen_home)}
    settings = validate_model(Settings, data, origins)
    if settings.voices or settings.default_voice:
        _check_user_voices(settings, origins)
    return settings


def _check_user_voices(settings: Settings, origins: Origins) -> None:
    """Validate the user's voice templates while the file (or variable) that set each one is known,
    so that a bad template or default names it; `load_voices` merges them later."""
    packaged, _ = load_voices()
    for name, spec in settings.voices.items():  # Settings has checked that each is a mapping
        validate_model(VoiceTemplate, {"name": name, **spec}, origins, ("voices", name))
    for language, voice in settings.default_voice.items():
        if voice not in packaged and voice not in settings.voices:
            where = _origin(("default_voice", language), origins)
            raise ConfigError(f"{where}: default_voice.{language}: voice '{voice}' is not defined under voices")


def load_voices(
    settings: Settings | None = None, path: Path | None = None
) -> tuple[dict[str, VoiceTemplate], dict[str, str]]:
    """Return (voice name → template, language → default voice name): config/voices.yaml (or `path`),
    then the templates and defaults of the user's config files (`settings.voices`, `settings.default_voice`),
    which add voices or replace them by name."""
    source = Path(path or CONFIG_DIR / "voices.yaml")
    data = read_yaml(source)
    unknown = sorted(set(data) - {"voices", "default_voice"})
    if unknown:
        raise ConfigError(f"{source}: {unknown[0]}: unknown key; known: default_voice, voices")
    layers: list[tuple[Path | str, dict[str, Any], dict[str, Any]]] = [
        (source, data.get("voices") or {}, data.get("default_voice") or {})
    ]
    if settings is not None and (settings.voices or settings.default_voice):
        layers.append(("your config", settings.voices, settings.default_voice))
    voices: dict[str, VoiceTemplate] = {}
    defaults: dict[str, str] = {}
    for origin, templates, chosen in layers:
        origins: Origins = {(): origin}
        for name, spec in templates.items():
            if not isinstance(spec, dict):
                raise ConfigError(f"{origin}: voices.{name}: give a mapping with language and espeak_voice")
            voices[str(name)] = validate_model(
                VoiceTemplate, {"name": str(name), **spec}, origins, ("voices", str(name))
            )
        defaults.update({str(language): str(voice) for language, voice in chosen.items()})
        for language, voice in defaults.items():
            if voice not in voices:
                raise ConfigError(f"{origin}: default_voice.{language}: voice '{voice}' is not defined under voices")
    return voices, defaults


def load_visemes_table(path: Path | None = None) -> dict[str, Any]:
    """The raw viseme table; `phoneme.visemes.VisemeTable` turns it into typed shapes."""
    return read_yaml(path or CONFIG_DIR / "visemes.yaml")
