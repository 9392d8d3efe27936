"""Batch script files (YAML, or CSV with one row per question) → a validated list of render jobs.

Every error names the file and line and what to fix, and all of them are found before any render:
syntax, missing or misspelled fields, unknown languages and voices, unknown avatars, texts that are
empty or too long, and licenses that do not cover a language, the channel or the purpose.

YAML:
    name: deposit-faq-2026-12
    avatar: chen
    languages: [zh, en]
    voices: {zh: zh-female-1}        # optional; the language's default voice otherwise
    channel: web
    purpose: customer-service
    items:
      - id: q1
        text: {zh: "…", en: "…"}    # per language
      - id: q2
        text: "…"                    # one text for every language (the manifest says so)

CSV: columns `id` and either `text` or `text_<lang>` per language; the batch-level fields come from
the command line (`dhf batch questions.csv --avatar chen --languages zh,en --channel web ...`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from avatars.errors import AvatarError, LicenseError
from avatars.library import AvatarLibrary
from config import Settings, load_voices
from config.errors import EXIT_QUALITY_FAILED, DhfError
from governance.audit import AuditLog
from governance.authorization import authorize
from phoneme.errors import SpeechError
from phoneme.normalize import normalize_text
from phoneme.speech import resolve_voice
from pipeline.request import RenderRequest, resolve_scene

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
TOP_LEVEL = {"name", "avatar", "languages", "voices", "channel", "purpose", "scene", "items", "review"}


class BatchScriptError(DhfError):
    """A script file is invalid; the message names file:line and the fix."""

    code = "invalid_script"


class BatchJobsFailedError(DhfError):
    """Some jobs of a batch failed (the others completed); the manifest lists which and why."""

    exit_code = EXIT_QUALITY_FAILED
    code = "batch_failed"


@dataclass(frozen=True)
class BatchJob:
    """One video: an item in one language."""

    item_id: str
    language: str
    voice: str
    text: str
    shared_text: bool  # the item has one text for every language (no translation given)


@dataclass(frozen=True)
class BatchScript:
    name: str
    avatar: str
    languages: tuple[str, ...]
    channel: str
    purpose: str
    jobs: tuple[BatchJob, ...]
    source: Path
    review: bool = False  # `review: required`: every video waits for a person's approval (README)
    scene: str | None = None  # the scene template every video uses (README: Scenes); None: the channel's


def check_scene(scene: str | None, channel: str, settings: Settings) -> str | None:
    """The scene name as given (checked: known, and laid out against the AI label) or None."""
    probe = RenderRequest(text="", avatar_id="", language="", output=Path("x.mp4"), channel=channel, scene=scene)
    resolve_scene(probe, settings)
    return scene


def override_scene(script: BatchScript, scene: str, settings: Settings) -> BatchScript:
    """`dhf batch --scene NAME`: every video of the script in that scene (wins over the script's)."""
    return replace(script, scene=check_scene(scene, script.channel, settings))


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def _mapping_lines(node: yaml.Node) -> dict[str, yaml.Node]:
    """Key → value node of a YAML mapping node (for line numbers)."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(key.value): value for key, value in node.value}


def _compose(path: Path) -> tuple[Any, yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchScriptError(f"{path}: cannot read the script ({exc}); check the path and that it is UTF-8") from exc
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BatchScriptError(f"{where}: YAML syntax error: {problem}; fix the indentation or quoting") from exc


def load_script(path: Path, defaults: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, int]]:
    """The raw script as a dict plus a field → line map (CSV rows become items)."""
    path = Path(path)
    if not path.is_file():
        raise BatchScriptError(f"script not found: {path}; check the path")
    if path.suffix.lower() == ".csv":
        return _load_csv(path, defaults or {})
    data, root = _compose(path)
    if not isinstance(data, dict):
        raise BatchScriptError(f"{path}:1: the script must be a mapping with name, avatar, languages and items")
    lines = {key: _line(node) for key, node in _mapping_lines(root).items()}
    items_node = _mapping_lines(root).get("items")
    if isinstance(items_node, yaml.SequenceNode):
        for index, node in enumerate(items_node.value):
            lines[f"items[{index}]"] = _line(node)
            for key, value in _mapping_lines(node).items():
                lines[f"items[{index}].{key}"] = _line(value)
    return {**(defaults or {}), **data}, lines


def _load_csv(path: Path, defaults: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
    """CSV rows → items, strictly: a row with the wrong number of columns, an unknown column or a
    quote that swallows the next rows is an error naming file:line (a lenient reader merges or drops
    rows silently, and a batch would exit 0 without an item). A UTF-8 BOM (Excel) is accepted."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            start = 1
            header = next(reader, None)
            rows = []
            start = reader.line_num + 1
            for row in reader:
                rows.append((start, reader.line_num, row))
                start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        message = f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 CSV"
        raise BatchScriptError(message) from exc
    except csv.Error as exc:
        raise BatchScriptError(
            f"{path}:{start}: CSV syntax error in the row starting here, found at line {reader.line_num} ({exc}); "
            "close its quote or quote the whole field"
        ) from exc
    except OSError as exc:
        raise BatchScriptError(f"{path}: cannot read the CSV ({exc.strerror}); check the path") from exc
    columns = [name.strip() for name in header or []]
    if not columns or "id" not in columns:
        raise BatchScriptError(f"{path}:1: the header row needs an id column and text or text_<lang> columns")
    unknown = [name for name in columns if name not in ("id", "text") and not re.fullmatch(r"text_[\w-]+", name)]
    if unknown or len(set(columns)) != len(columns):
        problem = f"unknown column '{unknown[0]}'" if unknown else "a column is named twice"
        raise BatchScriptError(f"{path}:1: {problem}; use id, and text or text_<lang> (e.g. text_zh)")
    items, lines = [], {}
    for first, last, row in rows:
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) != len(columns):
            raise BatchScriptError(
                f"{path}:{first}: {len(row)} columns, the header has {len(columns)}; quote fields that contain commas"
            )
        if last > first:  # a quoted field spanning lines: an unterminated quote that swallowed rows, or
            # a line break inside a text; the two look alike, so both are refused (predictably)
            raise BatchScriptError(
                f"{path}:{first}: a quoted field runs from line {first} to {last}; close the quote, and keep "
                "each text on one line (line breaks inside a text are not allowed)"
            )
        values = dict(zip(columns, row, strict=True))
        texts = {key[5:]: value for key, value in values.items() if key.startswith("text_") and value}
        text: Any = texts if texts else values.get("text")
        index = len(items)
        items.append({"id": values.get("id"), "text": text})
        lines[f"items[{index}]"] = lines[f"items[{index}].id"] = lines[f"items[{index}].text"] = first
    data = {"name": path.stem, **defaults, "items": items}
    return data, lines


def validate_script(path: Path, settings: Settings, defaults: dict[str, Any] | None = None) -> BatchScript:
    """Everything a batch needs checked before the first render; BatchScriptError on the first problem."""
    data, lines = load_script(path, defaults)
    path = Path(path)

    def fail(field: str, message: str) -> BatchScriptError:
        line = lines.get(field) or lines.get(field.split(".")[0]) or lines.get(field.split("[")[0]) or 1
        return BatchScriptError(f"{path}:{line}: {field}: {message}")

    unknown = sorted(set(data) - TOP_LEVEL)
    if unknown:
        raise fail(unknown[0], f"unknown field (known: {', '.join(sorted(TOP_LEVEL))})")
    for required in ("avatar", "languages", "items"):
        if not data.get(required):
            raise fail(required, "missing; every script needs name, avatar, languages and items")
    name = str(data.get("name") or path.stem)
    if not NAME.match(name):
        raise fail("name", "use letters, digits, '.', '-' or '_' (it names the output folder)")
    languages = data["languages"]
    if isinstance(languages, str):
        languages = [part.strip() for part in languages.split(",") if part.strip()]
    if not isinstance(languages, list) or not all(isinstance(x, str) for x in languages):
        raise fail("languages", "give a list of language codes, e.g. [zh, en]")
    voices_map = data.get("voices") or {}
    if not isinstance(voices_map, dict):
        raise fail("voices", "give a mapping language → voice template, e.g. {zh: zh-female-1}")
    channel, purpose = str(data.get("channel", "demo")), str(data.get("purpose", "demo"))
    templates, default_voices = load_voices(settings)
    voices = {}
    for language in languages:
        try:
            voices[language] = resolve_voice(language, voices_map.get(language), templates, default_voices).name
        except SpeechError as exc:
            raise fail("voices" if language in voices_map else "languages", str(exc)) from exc
    try:
        avatar = AvatarLibrary.from_settings(settings.paths).get(str(data["avatar"]))
        audit = AuditLog.from_settings(settings)
        for language in languages:
            authorize(avatar, language, channel, purpose, audit)
    except (AvatarError, LicenseError) as exc:
        raise fail("avatar", str(exc)) from exc
    review = data.get("review", "off")
    review = {True: "required", False: "off"}.get(review, review) if isinstance(review, bool) else review
    if review not in ("off", "required"):
        raise fail("review", f"'{review}' is not a choice; use review: required (or leave it out)")
    items = data["items"]
    if not isinstance(items, list):
        raise fail("items", "give a list of items, each with an id and a text")
    jobs, seen = [], set()
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise fail(where, "each item needs an id and a text")
        item_id = str(item.get("id") or "")
        if not NAME.match(item_id):
            raise fail(f"{where}.id", "missing or invalid id (letters, digits, '.', '-', '_'; it names the file)")
        if item_id in seen:
            raise fail(f"{where}.id", f"duplicate id '{item_id}'")
        seen.add(item_id)
        text = item.get("text")
        if isinstance(text, dict):
            extra = sorted(set(text) - set(languages))
            if extra:
                raise fail(f"{where}.text", f"has a text for '{extra[0]}', which is not in languages {languages}")
        elif not isinstance(text, str):
            raise fail(f"{where}.text", "missing; give one text, or one per language")
        for language in languages:
            shared = not isinstance(text, dict)
            value = text if shared else text.get(language)
            if value is None:
                raise fail(f"{where}.text", f"no text for language '{language}' (give text.{language})")
            try:
                normalize_text(str(value), language, settings.text.max_chars, settings.text.min_chars)
            except SpeechError as exc:
                raise fail(f"{where}.text", f"[{language}] {exc}") from exc
            jobs.append(BatchJob(item_id, language, voices[language], str(value), shared))
    scene = data.get("scene")
    try:
        scene = check_scene(str(scene) if scene is not None else None, channel, settings)
    except DhfError as exc:
        raise fail("scene", str(exc)) from exc
    return BatchScript(
        name, avatar.avatar_id, tuple(languages), channel, purpose, tuple(jobs), path, review == "required", scene
    )
