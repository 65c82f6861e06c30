"""Read the conversation content from ``conversations/`` (YAML) into the core's model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from .core.content import Content, ContentError, build_content, build_flow, build_module
from .core.leads import build_qualification


def default_content_dir() -> Path:
    """``conversations/`` at the project root (beside the ``bot`` package)."""
    return Path(__file__).resolve().parent.parent / "conversations"


def read_yaml(path: Path, root: Path) -> Any:
    """Parse one YAML file; a syntax error becomes a ``ContentError`` naming file and line."""
    name = _relative(path, root)
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ContentError(name, where, f"is not valid YAML: {exc.problem}") from None
    except OSError as exc:
        raise ContentError(name, "file", f"cannot be read: {exc.strerror}") from None


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(root.name) / path.relative_to(root))
    except ValueError:
        return str(path)


def module_files(root: Path) -> list[Path]:
    """The training module files, in file-name order."""
    return sorted((root / "modules").glob("*.yaml"))


def load_content(root: Path | None = None) -> Content:
    """Load and validate onboarding, every module and the qualification rules under ``root``."""
    root = root or default_content_dir()
    onboarding_path = root / "onboarding.yaml"
    flow = build_flow(read_yaml(onboarding_path, root), _relative(onboarding_path, root))
    modules = []
    for path in module_files(root):
        name = _relative(path, root)
        module = build_module(read_yaml(path, root), name)
        if module.id != path.stem:
            raise ContentError(name, f"module '{module.id}', field 'id'", f"must equal the file name '{path.stem}'")
        modules.append(module)
    content = build_content(flow, modules, source=_relative(root / "modules", root))
    rules_path = root / "qualification.yaml"
    rules = build_qualification(read_yaml(rules_path, root), _relative(rules_path, root), content)
    return replace(content, qualification=rules)
