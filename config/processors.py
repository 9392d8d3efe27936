"""The processor registry: every name `fusion.processors` may list, where it is defined, and the chain rules.

Why a table of module paths in the bottom layer: a processor's settings section (`fusion.<name>`) is
its own pydantic `Options` class, used as is, and its place in the chain is data on the processor
(`ChainRule`); both are checked when the YAML is loaded, so a typo fails with the file and key named.
The settings layer must not import the engine's package (it is below it), so it names the module
and imports it when settings are validated, as `logging.config` names handler classes. Adding a
processor is its module plus one line here (README: Adding a processor).

Each entry names a `fusion.processors.base.ProcessorSpec` as `module:attribute`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

REGISTRY: Mapping[str, str] = MappingProxyType(
    {
        "reenactor": "fusion.processors.reenactor:PROCESSOR",
        "color_matcher": "fusion.processors.post:COLOR_MATCHER",
        "upscaler": "fusion.processors.post:UPSCALER",
        "compositor": "fusion.processors.scene:COMPOSITOR",
        "face_swapper": "fusion.processors.face_swapper:PROCESSOR",
        "lip_syncer": "fusion.processors.lip_syncer:PROCESSOR",
        "face_enhancer": "fusion.processors.face_enhancer:PROCESSOR",
        "frame_enhancer": "fusion.processors.frame_enhancer:PROCESSOR",
        "mouth_bank": "fusion.processors.mouth_bank:PROCESSOR",
    }
)
DEFAULT_CHAIN = ("reenactor", "color_matcher", "upscaler", "compositor")
ALWAYS_LAST = ("labeler", "watermarker")  # appended by the engine; never listed, removed or reordered


@dataclass(frozen=True)
class ChainRule:
    """Where a processor may stand in `fusion.processors`; `why` ends the refusal's message.

    `first`/`last`: the chain starts/ends with it (so it is required). `right_after`: when listed, it
    stands right after that processor. `one_of`: a group of which exactly one member is listed (the
    message joins the members' `why`s)."""

    first: bool = False
    last: bool = False
    right_after: str | None = None
    one_of: str | None = None
    why: str = ""


class RegisteredProcessor(Protocol):
    """What the settings layer reads of a `ProcessorSpec`."""

    name: str
    options: Any  # the pydantic class of its `fusion.<name>` section; None: it has none
    rule: ChainRule


def spec(name: str) -> RegisteredProcessor:
    """The registered processor `name` (its module is imported on first use)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown processor '{name}'; known: {', '.join(REGISTRY)}")
    module, _, attribute = REGISTRY[name].partition(":")
    found = getattr(importlib.import_module(module), attribute or "PROCESSOR")
    if found.name != name:
        raise ValueError(f"{REGISTRY[name]} describes '{found.name}', not '{name}'; fix config/processors.py")
    return found


def check_chain(names: list[str]) -> None:
    """Refuse a chain that lists an engine-appended stage, an unknown or repeated processor, or
    breaks a processor's `ChainRule`; one line naming the processor and the fix."""
    for name in names:
        if name in ALWAYS_LAST:
            raise ValueError(
                f"'{name}' cannot be listed: the labeler and the watermarker are always appended last; "
                "remove it from the list"
            )
        spec(name)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"'{duplicates[0]}' is listed twice; list each processor once")
    rules = {name: spec(name).rule for name in REGISTRY}
    for name, rule in rules.items():
        if rule.first and (not names or names[0] != name):
            raise ValueError(f"the chain must start with '{name}' ({rule.why})")
        if rule.last and (not names or names[-1] != name):
            raise ValueError(f"the chain must end with '{name}' ({rule.why})")
    for name, rule in rules.items():
        after = rule.right_after
        if after is not None and name in names and (after not in names or names.index(name) != names.index(after) + 1):
            raise ValueError(f"'{name}' must come right after '{after}' ({rule.why})")
    groups = {rule.one_of for rule in rules.values() if rule.one_of is not None}
    for group in sorted(groups):
        members = [name for name, rule in rules.items() if rule.one_of == group]
        if sum(name in names for name in members) != 1:
            quoted = " and ".join(f"'{name}'" for name in members)
            reasons = "; ".join(rules[name].why for name in members)
            raise ValueError(f"list exactly one of {quoted} ({reasons})")
