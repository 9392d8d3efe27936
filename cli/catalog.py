"""`dhf voices|languages|scenes [--json]`: what a render can ask for, read from the same settings a
render validates against (config/voices.yaml, config/languages/, `scenes:`, each with the user's
--config merged over it), so a name listed here is a name `dhf render` accepts."""

from __future__ import annotations

import argparse

from cli.output import add_json_flag, print_json
from config import Settings, load_voices
from phoneme.languages import languages


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    for name, words, handler in (
        ("voices", "the voice templates (--voice), with each language's default", run_voices),
        ("languages", "the languages (--lang): their names, default voices and every voice", run_languages),
        ("scenes", "the scene templates (--scene): canvas size, description, channels using them", run_scenes),
    ):
        parser = sub.add_parser(name, parents=[common], help=words)
        add_json_flag(parser, f"the {name}")
        parser.set_defaults(handler=handler)


def voice_rows(settings: Settings) -> list[dict]:
    """One row per voice template, by language then name; `default`: the language's default voice."""
    voices, defaults = load_voices(settings)
    rows = []
    for voice in sorted(voices.values(), key=lambda v: (v.language, v.name)):
        row = voice.model_dump(mode="json")
        rows.append({"name": row.pop("name"), "language": row.pop("language"),
                     "default": defaults.get(voice.language) == voice.name, **row})  # fmt: skip
    return rows


def language_rows(settings: Settings) -> list[dict]:
    """Every language with a data file or a voice; `voices` empty: it has a file but nothing speaks it."""
    voices, defaults = load_voices(settings)
    files = languages()
    codes = sorted(set(files) | {voice.language for voice in voices.values()})
    return [
        {
            "code": code,
            "name": files[code].name if code in files and files[code].name else code,
            "default_voice": defaults.get(code),
            "voices": sorted(v.name for v in voices.values() if v.language == code),
        }
        for code in codes
    ]


def scene_rows(settings: Settings) -> list[dict]:
    """Every scene template; `channels`: the channels whose renders use it unless --scene says otherwise."""
    return [
        {
            "name": name,
            "width": template.width,
            "height": template.height,
            "description": template.description,
            "background": template.background.kind,
            "channels": sorted(c for c, scene in settings.scene.channels.items() if scene == name),
            "default": settings.scene.name == name,
        }
        for name, template in sorted(settings.scenes.items())
    ]


def run_voices(args: argparse.Namespace, settings: Settings) -> int:
    rows = voice_rows(settings)
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        default = "  (default)" if row["default"] else ""
        print(f"{row['name']}\t{row['language']}\t{row['engine']}{default}")
    return 0


def run_languages(args: argparse.Namespace, settings: Settings) -> int:
    rows = language_rows(settings)
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        voices = ", ".join(row["voices"]) or "no voice (add one to config/voices.yaml)"
        print(f"{row['code']}\t{row['name']}\tdefault {row['default_voice'] or '-'}\t{voices}")
    return 0


def run_scenes(args: argparse.Namespace, settings: Settings) -> int:
    rows = scene_rows(settings)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no scenes configured (README: Scenes); renders use the classic layout")
    for row in rows:
        channels = f"  channels: {', '.join(row['channels'])}" if row["channels"] else ""
        default = "  (default)" if row["default"] else ""
        print(f"{row['name']}\t{row['width']}x{row['height']}\t{row['description']}{channels}{default}")
    return 0
