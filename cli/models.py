"""`dhf models provision|verify|add`: the pinned face models, and the neural processors' models the
user places by hand (README: What the two commands do; README: Neural processors)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.output import add_json_flag, print_json
from config import Settings
from config.errors import DhfError
from fusion.processors.catalog import MODEL_FORMATS, model_format
from vision.models import ModelRegistry, add_model
from vision.provision import provision


class ModelsUsageError(DhfError):
    code = "usage"


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    models = sub.add_parser(
        "models",
        parents=[common],
        help="provision or verify the pinned models, or add a neural processor's model file",
        description="`dhf models add FILE --as NAME` copies a model file you downloaded into the model directory, "
        f"pins its sha256 and records its licence. Names: {', '.join(sorted(MODEL_FORMATS))}.",
    )
    models.set_defaults(handler=run_models)
    models.add_argument(
        "action",
        choices=["provision", "verify", "add"],
        help="provision: the face models (or the optional models named after it); verify: every pinned model; "
        "add: place a model file",
    )
    models.add_argument(
        "file", nargs="?", type=Path, help="add: the downloaded .onnx file; provision: an optional model's name"
    )
    models.add_argument("--as", dest="name", help="add: the model's name (e.g. gfpgan_1.4)")
    models.add_argument("--sha256", help="add: the sha256 the file must have (refused otherwise)")
    add_json_flag(models, "verify: every model's state; add: the placed file")


def run_models(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "provision":
        # `dhf models provision real_esrgan_x4plus`: one opt-in model (large), besides the default set.
        provision(settings.paths.models, only=[str(args.file)] if args.file else None)
        return 0
    if args.action == "add":
        if args.file is None or not args.name:
            raise ModelsUsageError("usage: dhf models add FILE --as NAME (e.g. --as gfpgan_1.4)")
        fmt = model_format(args.name)
        target, sha256, replaced = add_model(args.file, fmt, settings.paths.models, args.sha256)
        if args.json:
            print_json({"name": fmt.name, "path": str(target), "sha256": sha256, "replaced": replaced,
                        "license": fmt.license, "commercial": fmt.commercial})  # fmt: skip
            return 0
        verb = "replaced" if replaced else "added"
        print(f"{verb} {fmt.name}: {target} sha256 {sha256}")
        print(f"licence: {fmt.license}{'' if fmt.commercial else ' (refused for commercial purposes and channels)'}")
        return 0
    registry = ModelRegistry(settings.paths.models)
    rows = []  # a model that fails verification raises (one error line, exit 2) before anything is printed
    for name, spec in registry.specs.items():
        missing = spec.optional and not (registry.model_dir / spec.filename).exists()
        path = None if missing else registry.path(name)
        rows.append({"name": name, "state": "not provisioned" if missing else "ok", "optional": spec.optional,
                     "path": str(path) if path else None, "sha256": spec.sha256, "license": spec.license,
                     "fix": spec.fix if missing else None})  # fmt: skip
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        print(
            f"{row['name']}: ok {row['path']}"
            if row["path"]
            else f"{row['name']}: optional, not provisioned ({row['fix']})"
        )
    return 0
