"""A small SSML subset: `<speak>`, `<break>`, `<say-as interpret-as="characters|digits">`, `<sub alias>`.

Why a subset and not espeak-ng's own SSML: the same parse has to drive speech, captions and visemes,
so pauses and substitutions are resolved here into plain pieces (text to speak and caption, a written
text with its spoken form, a pause) and espeak-ng only ever sees plain text. Any other tag is refused
with one line; text without anything that looks like a tag is plain text (so "AT&T" stays as written).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from phoneme.errors import SpeechError

SUPPORTED = '<speak>, <break time="500ms"/>, <say-as interpret-as="characters|digits">, <sub alias="...">'
TAG = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>")
DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
BREAK_STRENGTH = {"none": 0.0, "x-weak": 0.1, "weak": 0.2, "medium": 0.4, "strong": 0.7, "x-strong": 1.0}
BREAK_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")
MAX_BREAK_S = 10.0
SAY_AS = {"characters": "characters", "spell-out": "characters", "digits": "digits"}


@dataclass(frozen=True)
class Text:
    """Plain text: captioned as written, spoken after the language's normalization."""

    text: str


@dataclass(frozen=True)
class Spoken:
    """Written text with its own spoken form (`<sub>`: the alias; `<say-as>`: letters or digits one by one)."""

    written: str
    spoken: str
    kind: str  # "sub", "characters" or "digits"


@dataclass(frozen=True)
class Pause:
    seconds: float


Piece = Text | Spoken | Pause


def _refuse(problem: str) -> SpeechError:
    return SpeechError(f"{problem}; supported SSML: {SUPPORTED}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # drop an XML namespace ("{http://www.w3.org/2001/10/synthesis}speak")


def _break_seconds(element: ET.Element) -> float:
    time, strength = element.get("time"), element.get("strength")
    if time is not None:
        match = BREAK_TIME.match(time)
        if not match:
            raise _refuse(f'<break time="{time}"> is not a duration; write it like "500ms" or "2s"')
        seconds = float(match.group(1)) / (1000.0 if match.group(2) == "ms" else 1.0)
        if seconds > MAX_BREAK_S:
            raise _refuse(f'<break time="{time}"> is over {MAX_BREAK_S:g} s; use a shorter pause')
        return seconds
    if strength is not None:
        if strength not in BREAK_STRENGTH:
            raise _refuse(f'<break strength="{strength}"> is unknown; use one of {", ".join(BREAK_STRENGTH)}')
        return BREAK_STRENGTH[strength]
    return BREAK_STRENGTH["medium"]


def _text_only(element: ET.Element, name: str) -> str:
    if len(element):
        raise _refuse(f"<{name}> may contain only text, not <{_local(element[0].tag)}>")
    written = element.text or ""
    if not written.strip():
        raise _refuse(f"<{name}> needs the written text inside it")
    return written


def _spell(written: str, kind: str) -> str:
    if kind == "digits":
        return " ".join(c for c in written if not c.isspace())
    return " ".join(c for c in written if c.isalnum())


def _walk(element: ET.Element, pieces: list[Piece], root: bool) -> None:
    name = _local(element.tag)
    if name == "speak" and root:
        if element.text:
            pieces.append(Text(element.text))
        for child in element:
            _walk(child, pieces, root=False)
            if child.tail:
                pieces.append(Text(child.tail))
        return
    if name == "break":
        if len(element) or (element.text or "").strip():
            raise _refuse("<break> must be empty: write <break/>")
        pieces.append(Pause(_break_seconds(element)))
    elif name == "sub":
        alias = element.get("alias")
        if alias is None or not alias.strip():
            raise _refuse('<sub> needs an alias: <sub alias="World Wide Web">WWW</sub>')
        pieces.append(Spoken(_text_only(element, name), alias, "sub"))
    elif name == "say-as":
        kind = SAY_AS.get(element.get("interpret-as", ""))
        if kind is None:
            raise _refuse(f'<say-as interpret-as="{element.get("interpret-as", "")}"> is not supported')
        written = _text_only(element, name)
        spoken = _spell(written, kind)
        if not spoken:
            raise _refuse(f"<say-as> has nothing to say in {written.strip()!r}")
        pieces.append(Spoken(written, spoken, kind))
    else:
        raise _refuse(f"the tag <{name}> is not supported (tags are never read aloud)")


def parse_markup(text: str) -> list[Piece]:
    """Plain text → one Text piece; text with tags → the pieces of its SSML subset, or a one-line refusal."""
    if not TAG.search(text):
        return [Text(text)]
    if re.search(r"<!\s*(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        raise _refuse("document type and entity declarations are not accepted in the text")
    body = DECLARATION.sub("", text, count=1)
    stripped = body.strip()
    source = stripped if re.match(r"<\s*speak[\s>/]", stripped) and stripped.endswith("</speak>") else None
    shift = 0 if source else len("<speak>")
    source = source or f"<speak>{body}</speak>"
    try:
        root = ET.fromstring(source)
    except ET.ParseError as exc:
        problem = str(exc).split(":", 1)[0].replace("not well-formed ", "").strip("()")
        line, column = exc.position
        where = f"line {line}, character {column + 1 - (shift if line == 1 else 0)}"
        raise _refuse(
            f"the text has tags but is not well-formed SSML ({problem} at {where}); "
            "in SSML write < as &lt; and & as &amp;"
        ) from None
    if _local(root.tag) != "speak":
        raise _refuse(f"the SSML root must be <speak>, not <{_local(root.tag)}>")
    pieces: list[Piece] = []
    _walk(root, pieces, root=True)
    return pieces
