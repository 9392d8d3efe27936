"""pyproject.toml says what is used: every third-party package the code imports is declared where it is
needed, every runtime dependency is imported, and the two ONNX Runtime builds are alternatives.

Why from the source: a package that arrives only as someone else's dependency (nltk through g2p-en,
pydantic through FastAPI) works until that package drops it; a declared one nobody imports (pyttsx3
once its private binding was replaced) is installed on every machine for nothing. The imports are read
with `ast`, function-local ones included (most heavy packages are imported lazily), and mapped to their
distributions by the installed metadata.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import REPO

# Where a product import may be declared besides [project] dependencies: the ONNX Runtime build (one of
# cpu/gpu, checked below to be the same package) and `setup` (model provisioning only).
PRODUCT_EXTRAS = ("cpu", "setup")
ACCELERATOR_EXTRAS = ("cpu", "gpu")


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    """The normalized distribution name of a PEP 508 requirement ("dlib-bin>=19.24" → "dlib-bin")."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _declared(*extras: str) -> set[str]:
    project = _pyproject()["project"]
    names = {_name(requirement) for requirement in project["dependencies"]}
    for extra in extras:
        names |= {_name(requirement) for requirement in project["optional-dependencies"].get(extra, [])}
    return names


def _imported_modules(folders: list[Path]) -> dict[str, set[str]]:
    """Top-level module → the files importing it, for every absolute import in the folders' .py files."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    found.setdefault(module.split(".")[0], set()).add(str(path.relative_to(REPO)))
    return found


def _third_party(found: dict[str, set[str]], local: set[str]) -> dict[str, set[str]]:
    return {
        module: files
        for module, files in found.items()
        if module not in sys.stdlib_module_names and module not in local and module != "__future__"
    }


@functools.cache
def _providers() -> dict[str, frozenset[str]]:
    """Top-level module → installed distributions, from each distribution's files (its RECORD): top_level.txt,
    which `importlib.metadata.packages_distributions` reads first, names only `_dlib_pybind11` for dlib-bin."""
    providers: dict[str, set[str]] = {}
    for distribution in importlib.metadata.distributions():
        name = re.sub(r"[-_.]+", "-", distribution.metadata["Name"]).lower()
        for file in distribution.files or ():
            top = file.parts[0].split(".")[0]
            if not file.parts[0].endswith((".dist-info", ".egg-info", ".pth", ".data")) and top.isidentifier():
                providers.setdefault(top, set()).add(name)
    return {module: frozenset(names) for module, names in providers.items()}


def _distributions(module: str) -> set[str]:
    """The installed distributions that provide `module`; for a module of an extra that is not installed
    here (e.g. `speechmos` of `bench`), the distribution of the same name, so it is judged by its declaration."""
    return set(_providers().get(module, ())) or {re.sub(r"[-_.]+", "-", module).lower()}


def _product_packages() -> list[str]:
    return sorted({package.split(".")[0] for package in _pyproject()["tool"]["setuptools"]["packages"]})


def _undeclared(found: dict[str, set[str]], declared: set[str]) -> list[str]:
    return [
        f"{module} ({', '.join(sorted(_distributions(module)))}), imported by {sorted(files)[0]}"
        for module, files in sorted(found.items())
        if not _distributions(module) & declared
    ]


def test_every_package_the_product_imports_is_declared():
    packages = _product_packages()
    found = _third_party(_imported_modules([REPO / package for package in packages]), set(packages))
    assert {"numpy", "cv2", "onnxruntime", "g2p_en"} <= set(found)  # the scan sees lazy and aliased imports
    undeclared = _undeclared(found, _declared(*PRODUCT_EXTRAS))
    assert not undeclared, f"imported by the product but not declared in pyproject.toml: {undeclared}"


def test_every_runtime_dependency_is_imported_by_the_product():
    packages = _product_packages()
    found = _third_party(_imported_modules([REPO / package for package in packages]), set(packages))
    used = set().union(*(_distributions(module) for module in found))
    unused = sorted(_declared() - used)
    assert not unused, f"declared in [project] dependencies but imported by no product package: {unused}"


def test_tests_scripts_and_devtools_import_only_declared_packages():
    folders = [REPO / "tests", REPO / "scripts", REPO / "devtools"]
    local = set(_product_packages()) | {"tests", "devtools"}
    local |= {path.stem for folder in folders for path in folder.rglob("*.py")}
    found = _third_party(_imported_modules(folders), local)
    undeclared = _undeclared(found, _declared(*_pyproject()["project"]["optional-dependencies"]))
    assert not undeclared, f"imported by tests, scripts or devtools but not declared in pyproject.toml: {undeclared}"


def test_onnx_runtime_comes_from_exactly_one_of_the_cpu_and_gpu_extras():
    """onnxruntime and onnxruntime-gpu both install the module `onnxruntime`: never both, never in the base."""
    cpu, gpu = (_declared(extra) - _declared() for extra in ACCELERATOR_EXTRAS)
    assert not {"onnxruntime", "onnxruntime-gpu"} & _declared()
    assert cpu == {"onnxruntime"} and gpu == {"onnxruntime-gpu"}


def _setup_extras(tmp_path: Path, nvidia_smi: str) -> str:
    """The extras scripts/setup would install with this `nvidia-smi` first on PATH (it installs nothing)."""
    bin_dir = tmp_path / nvidia_smi.split()[0]
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\n{nvidia_smi}\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run([str(REPO / "scripts" / "setup"), "--extras"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_setup_installs_the_gpu_build_only_where_nvidia_smi_lists_a_gpu(tmp_path):
    listed = _setup_extras(tmp_path, "echo 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5d1e)'")
    no_driver = _setup_extras(tmp_path, "exit 9")  # nvidia-smi installed, no driver or no device
    assert listed.split(",")[0] == "gpu" and no_driver.split(",")[0] == "cpu"
    assert listed.split(",")[1:] == no_driver.split(",")[1:]
    assert set(no_driver.split(",")) <= set(_pyproject()["project"]["optional-dependencies"])
