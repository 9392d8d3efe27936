"""`dhf models provision|verify`: the pinned face models (README: What the two commands do)."""

from __future__ import annotations

import argparse

from config import Settings
from fusion.models import ModelRegistry
from fusion.provision import provision


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    models = sub.add_parser("models", parents=[common], help="provision or verify the pinned models")
    models.set_defaults(handler=run_models)
    models.add_argument("action", choices=["provision", "verify"])


def run_models(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "provision":
        provision(settings.paths.models)
        return 0
    registry = ModelRegistry(settings.paths.models)
    for name in registry.specs:
        print(f"{name}: ok {registry.path(name)}")
    return 0
