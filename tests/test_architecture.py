"""The core stays pure: no platform, database, network, YAML or Babel imports in ``bot/core``."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "bot" / "core"
FORBIDDEN = {"telegram", "aiosqlite", "httpx", "aiohttp", "starlette", "sqlite3", "yaml", "babel"}


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, absolute top-level module)`` for every import in ``tree``, however nested."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("import_module", "__import__"):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value.split(".")[0]))
    return found


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_the_core_exists():
    names = {p.name for p in core_files()}
    assert len(names) >= 5
    assert {"engine.py", "normalize.py", "session.py", "messages.py", "content.py", "training.py"} <= names


def test_core_imports_no_io_or_platform_library():
    offences = []
    imports_seen = 0
    for path in core_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, module in imported_modules(tree):
            imports_seen += 1
            if module in FORBIDDEN:
                offences.append(f"{path.relative_to(CORE.parent.parent)}:{line} imports {module}")
    assert imports_seen > 10  # the scan really saw the core's imports
    assert offences == []


def test_core_does_not_import_the_outer_layers():
    """Relative imports stay inside the core; nothing reaches up into storage, services or channels."""
    offences = []
    for path in core_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level > 1 or (node.level == 0 and (node.module or "").startswith("bot.") and not node.module.startswith("bot.core")):
                    offences.append(f"{path.name}:{node.lineno} from {'.' * node.level}{node.module or ''}")
    assert offences == []


def test_the_scanner_catches_forbidden_imports():
    sample = (
        "import os\n"
        "import aiosqlite\n"
        "from telegram.ext import Application\n"
        "def f():\n"
        "    import yaml\n"
        "    from babel.numbers import format_decimal\n"
        "from . import normalize\n"
        "importlib.import_module('httpx')\n"
    )
    modules = {m for _, m in imported_modules(ast.parse(sample))}
    assert modules & FORBIDDEN == {"aiosqlite", "telegram", "yaml", "babel", "httpx"}
    assert "os" in modules
