"""Where a user's configuration comes from: which YAML files, which environment variables, and where a
relative scene image in a user's file points.

Why layers rather than the first file found: a site keeps its brand scenes, voices and API port in
`$DHF_HOME/config.yaml`, and a per-job `--config` that raises one threshold must not drop them. Each
layer is merged over the one before, key by key:

    packaged defaults < $DHF_HOME/config.yaml < $DHF_CONFIG < --config < DHF_<SECTION>__<KEY> variables

Why the environment wins over every file: a container or a systemd unit sets one value
(`DHF_API__PORT=9000`) without writing a file, the way pydantic-settings' nested variables work.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from config.errors import ConfigError
from config.files import load_yaml

PREFIX = "DHF_"
NESTED = "__"  # DHF_API__PORT → api.port; DHF_QUALITY__LIP_SYNC__MIN_SCORE → quality.lip_sync.min_score
CONFIG_VARIABLE = "DHF_CONFIG"
HOME_VARIABLE = "DHF_HOME"
HOME_FILE = "config.yaml"


@dataclass(frozen=True)
class ConfigFile:
    """One user file to merge: its path, whether it must exist, and what put it on the list (for the
    error a missing file raises: the user has to know whether to fix a flag or a variable)."""

    path: Path
    required: bool
    given_by: str


def user_files(explicit: Path | None, home: Path, environ: Mapping[str, str]) -> list[ConfigFile]:
    """The user's config files, lowest precedence first: `home`/config.yaml if it exists, the file
    named by DHF_CONFIG, then `explicit` (--config). A file named by the flag or the variable must exist."""
    files = [ConfigFile(Path(home).expanduser() / HOME_FILE, False, f"${HOME_VARIABLE}/{HOME_FILE}")]
    if environ.get(CONFIG_VARIABLE):
        files.append(ConfigFile(Path(environ[CONFIG_VARIABLE]).expanduser(), True, CONFIG_VARIABLE))
    if explicit is not None:
        files.append(ConfigFile(Path(explicit), True, "--config"))
    return [file for file in files if file.required or file.path.is_file()]


def environment_overrides(environ: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """(variable name, nested mapping) for every `DHF_<SECTION>__<KEY>[__<KEY>…]` variable, sorted by
    name so that the result does not depend on the environment's order.

    Names are case-insensitive (keys are lower case). A value is read as YAML, as if written after the
    key in a config file (`25` an integer, `[2, 5]` a list, `off` the word `off` where a setting
    takes it); a value that is not valid YAML is taken as the plain string. Variables without `__`
    (DHF_HOME, DHF_CONFIG) are not settings."""
    overrides = []
    for name in sorted(environ):
        if not name.upper().startswith(PREFIX) or NESTED not in name:
            continue
        keys = [part.lower() for part in name[len(PREFIX) :].split(NESTED)]
        if not all(keys):
            raise ConfigError(f"environment variable {name}: empty key; write DHF_<SECTION>__<KEY>, e.g. DHF_API__PORT")
        nested: dict[str, Any] = {keys[-1]: _value(environ[name])}
        for key in reversed(keys[:-1]):
            nested = {key: nested}
        overrides.append((name, nested))
    return overrides


def anchor_scene_images(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`data` with each relative scene image (`scenes.<name>.background.image`, `.logo.image`) that
    exists beside the user's file made absolute: a brand's logo sits next to its config.yaml, wherever
    the command runs. A relative path that is not there keeps naming the bundled assets in config/
    (`scenes/web-background.jpg`, as the packaged templates do)."""
    scenes = data.get("scenes")
    if not isinstance(scenes, dict):
        return data
    anchored = {}
    for name, template in scenes.items():
        if isinstance(template, dict):
            template = {**template}
            for part in ("background", "logo"):
                element = template.get(part)
                if isinstance(element, dict) and isinstance(element.get("image"), str):
                    image = Path(os.path.expanduser(os.path.expandvars(element["image"])))
                    if not image.is_absolute() and (folder / image).exists():
                        template[part] = {**element, "image": str(folder / image)}
        anchored[name] = template
    return {**data, "scenes": anchored}


def _value(text: str) -> Any:
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text
