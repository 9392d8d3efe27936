"""Text burnt into a scene: the captions (at most two lines per cue) and the lower-third name tag.

Why a module of its own: the cues are the sidecar captions' (`phoneme.captions.build_cues`, so what
is burnt in is what the SRT says), but a cue's text must also fit the canvas in at most two lines
at the template's size. Lines break at spaces in Latin text and between characters in CJK text,
never before a closing mark (，。！？」…) or after an opening one (「（…); a cue that needs more lines
is split into consecutive cues, its time shared by the characters each part shows.
Everything is drawn with the label's CJK font (passed in as `font`) (WenQuanYi Zen Hei by default), so Chinese and
Japanese names and captions render.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from config.settings import SceneCaptions, SceneNameTag
from phoneme.artifacts import TimedWord
from phoneme.captions import Cue, build_cues

NO_LINE_START = set("，。、；：？！）」』】》〉,.;:?!)]}…‥·・ー々ゝゞぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ%％")
NO_LINE_END = set("（「『【《〈([{“‘")
LINE_SPACING = 1.3  # line height, × the text size
PAD = 0.45  # box padding, × the text size
TITLE_SCALE = 0.7  # the name tag's second line, × the name's size


@lru_cache(maxsize=32)
def font_at(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, max(6, int(size)))


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _units(text: str) -> list[str]:
    """Unbreakable pieces: a Latin word (with the space before it), or one CJK character; closing
    marks stick to the piece before them and opening marks to the piece after."""
    units: list[str] = []
    opening = ""
    for char in text:
        if char == " ":
            if opening:
                units.append(opening)
                opening = ""
            units.append(" ")
        elif char in NO_LINE_START and units and units[-1] != " ":
            units[-1] += char
        elif char in NO_LINE_END:
            opening += char
        elif not _wide(char) and not opening and units and units[-1] != " " and not _wide(units[-1][-1]):
            units[-1] += char  # the Latin word goes on
        else:
            units.append(opening + char)
            opening = ""
    if opening:
        units.append(opening)
    merged: list[str] = []
    for unit in units:
        if merged and merged[-1] == " " and unit != " ":
            merged[-1] = " " + unit
        else:
            merged.append(unit)
    return merged


def wrap(text: str, font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    """Greedy lines no wider than `max_width` pixels (a single piece wider than that is cut by characters)."""
    lines: list[str] = []
    line = ""
    for unit in _units(text):
        candidate = line + unit if line else unit.lstrip(" ")
        if not candidate:
            continue
        if line and font.getlength(candidate) > max_width:
            lines.append(line.rstrip(" "))
            line = unit.lstrip(" ")
        else:
            line = candidate
        while font.getlength(line) > max_width and len(line) > 1:  # one piece too wide: cut it
            cut = max(1, max(i for i in range(1, len(line) + 1) if font.getlength(line[:i]) <= max_width or i == 1))
            lines.append(line[:cut])
            line = line[cut:]
    if line.strip():
        lines.append(line.rstrip(" "))
    return lines


@dataclass(frozen=True)
class BurnedCue:
    start: float
    end: float
    lines: tuple[str, ...]


def burned_cues(
    words: list[TimedWord], language: str, style: SceneCaptions, short_side: int, width: int, font: Path
) -> list[BurnedCue]:
    """The sidecar's cues, each as at most `style.max_lines` lines that fit the caption box."""
    face = font_at(str(font), round(style.size * short_side))
    max_width = style.max_width * width - 2 * PAD * face.size
    out: list[BurnedCue] = []
    for cue in build_cues(words, language):
        out.extend(split_cue(cue, wrap(cue.text, face, max_width), style.max_lines))
    return out


def split_cue(cue: Cue, lines: list[str], max_lines: int) -> list[BurnedCue]:
    """A cue whose text needs more lines than allowed becomes consecutive cues of `max_lines` lines,
    each on screen for its share of the characters."""
    if not lines:
        return []
    groups = [tuple(lines[i : i + max_lines]) for i in range(0, len(lines), max_lines)]
    total = sum(len("".join(g)) for g in groups)
    out, start = [], cue.start
    for index, group in enumerate(groups):
        end = cue.end if index == len(groups) - 1 else start + (cue.end - cue.start) * len("".join(group)) / total
        out.append(BurnedCue(start, end, group))
        start = end
    return out


def caption_box_height(style: SceneCaptions, short_side: int) -> int:
    size = round(style.size * short_side)
    return round(style.max_lines * LINE_SPACING * size + 2 * PAD * size)


def _rgba(color: str, alpha: float) -> tuple[int, int, int, int]:
    value = color.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16), round(255 * alpha))


def _as_layer(plate: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    rgba = np.asarray(plate).astype(np.float32)
    return np.ascontiguousarray(rgba[..., 2::-1]), rgba[..., 3:] / 255.0


def render_caption(
    lines: tuple[str, ...], style: SceneCaptions, short_side: int, font_file: Path
) -> tuple[np.ndarray, np.ndarray]:
    """BGR pixels and alpha of one cue: centred lines on a rounded box."""
    size = round(style.size * short_side)
    font = font_at(str(font_file), size)
    pad, line_h = round(PAD * size), round(LINE_SPACING * size)
    widths = [font.getlength(line) for line in lines]
    width, height = round(max(widths)) + 2 * pad, line_h * len(lines) + 2 * pad - (line_h - size) // 2
    plate = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(plate)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=pad, fill=_rgba(style.box, style.box_opacity))
    ascent = font.getbbox("Ag")[1]
    for index, (line, line_w) in enumerate(zip(lines, widths, strict=True)):
        x, y = (width - line_w) / 2, pad + index * line_h - ascent + (line_h - size) // 4
        draw.text((x, y), line, font=font, fill=_rgba(style.color, 1.0))
    return _as_layer(plate)


def name_tag_height(tag: SceneNameTag, short_side: int) -> int:
    size = round(tag.size * short_side)
    lines = LINE_SPACING * size + (LINE_SPACING * TITLE_SCALE * size if tag.title else 0)
    return round(lines + 2 * PAD * size)


def render_name_tag(
    tag: SceneNameTag, name: str, short_side: int, max_width: int, font_file: Path
) -> tuple[np.ndarray, np.ndarray]:
    """BGR pixels and alpha of the lower-third tag: an accent bar, the name, the title under it. A
    name too long for `max_width` is set smaller (never cut), down to half the size."""
    path = str(font_file)
    size = round(tag.size * short_side)
    height = name_tag_height(tag, short_side)
    pad, bar = round(PAD * size), max(3, round(0.18 * size))
    name_size = size
    while name_size > size // 2:
        name_font, title_font = font_at(path, name_size), font_at(path, round(TITLE_SCALE * size))
        needed = max(name_font.getlength(name), title_font.getlength(tag.title) if tag.title else 0)
        if needed + 2 * pad + bar <= max_width:
            break
        name_size -= 1
    width = min(max_width, round(needed) + 2 * pad + bar + pad // 2)
    plate = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(plate)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=max(2, pad // 2), fill=_rgba(tag.plate, tag.opacity))
    draw.rectangle((0, 0, bar - 1, height - 1), fill=_rgba(tag.accent, 1.0))
    x = bar + pad
    top = name_font.getbbox("Ag")[1]
    draw.text((x, pad - top + (size - name_size) // 2), name, font=name_font, fill=_rgba(tag.color, 1.0))
    if tag.title:
        y = pad + round(LINE_SPACING * size) - title_font.getbbox("Ag")[1]
        draw.text((x, y), tag.title, font=title_font, fill=_rgba(tag.color, 0.85))
    return _as_layer(plate)
