"""The New video page's inline checks: what `dhf render --dry-run` checks, per language, as JSON.

Why `validate_request` and nothing of our own: the studio must refuse exactly what a render (the CLI's,
the API's) refuses, in the same words. `cli/render.py`'s `dry_run_document` is the CLI's shape of the
answer; the API may not import cli/ (the layers contract), so the few fields are built here from the
same `ValidatedRequest`. Not audited: like `--dry-run`, a check is not an attempt to render (the submit
goes through `api.context.checked_video`, which audits a refusal).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config import Settings
from config.errors import DhfError
from pipeline.request import RenderRequest, ValidatedRequest, validate_request

MAX_LANGUAGES = 8  # one job per language; more than this in one submit is a mistake, not a plan


@dataclass(frozen=True)
class Draft:
    """What the New video form holds: one script, one avatar, one or more languages.

    `voice` is the voice picked in the form; it speaks one language, so it applies to that language
    only and every other language gets its default voice (`voice_for`)."""

    text: str
    avatar_id: str
    languages: tuple[str, ...]
    voice: str | None = None
    voice_language: str | None = None
    scene: str | None = None
    channel: str = "demo"
    purpose: str = "demo"

    def voice_for(self, language: str) -> str | None:
        return self.voice if self.voice and self.voice_language == language else None

    def request(self, language: str, output: Path) -> RenderRequest:
        return RenderRequest(
            text=self.text,
            avatar_id=self.avatar_id,
            language=language,
            output=output,
            voice=self.voice_for(language),
            channel=self.channel,
            purpose=self.purpose,
            scene=self.scene or None,
        )


@dataclass(frozen=True)
class LanguageCheck:
    language: str
    valid: bool
    error: str | None  # the one line the CLI prints after "dhf: error: "
    spoken_characters: int | None = None
    voice: str | None = None
    scene: str | None = None
    license_id: str | None = None

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def check_language(draft: Draft, language: str, settings: Settings, probe: Path, actor: str) -> LanguageCheck:
    """One language of the draft through `validate_request` (the output `probe` is never written)."""
    try:
        validated: ValidatedRequest = validate_request(draft.request(language, probe), settings, actor)
    except DhfError as exc:
        return LanguageCheck(language, False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return LanguageCheck(
        language,
        True,
        None,
        len(validated.spoken_text),
        validated.voice.name,
        validated.scene,
        validated.license.license_id,
    )


def draft_problems(draft: Draft) -> list[str]:
    """What is wrong with the form as a whole (each language's own checks are `check_language`'s)."""
    problems = []
    if not draft.languages:
        problems.append("choose at least one language")
    if len(draft.languages) > MAX_LANGUAGES:
        problems.append(f"{len(draft.languages)} languages: at most {MAX_LANGUAGES} in one submit")
    if draft.voice and draft.voice_language and draft.voice_language not in draft.languages:
        problems.append(
            f"voice '{draft.voice}' speaks '{draft.voice_language}', which is not among the chosen languages; "
            "tick that language or pick another voice"
        )
    return problems


def check_draft(draft: Draft, settings: Settings, probe: Path, actor: str) -> dict:
    """The JSON the page shows inline: the character count against the limit, and each language's check."""
    problems = draft_problems(draft)
    results = [check_language(draft, lang, settings, probe, actor) for lang in draft.languages[:MAX_LANGUAGES]]
    return {
        "valid": not problems and all(result.valid for result in results),
        "characters": len(draft.text),
        "max_characters": settings.text.max_chars,
        "problems": problems,
        "languages": [result.as_dict() for result in results],
    }
