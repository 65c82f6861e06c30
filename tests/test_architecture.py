"""The core stays pure: no platform, database, network, YAML or Babel imports in ``bot/core``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "bot" / "core"
FORBIDDEN = {"telegram", "aiosqlite", "httpx", "aiohttp", "starlette", "sqlite3", "psycopg", "psycopg_pool", "yaml", "babel"}


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


# ----------------------------------------------------------------- the layers (docs/ARCHITECTURE.md)
BOT = CORE.parent
LAYERS = {
    # layer: the bot's own modules it must not import
    "core": {"app", "runtime", "cli", "admin_cli", "channels", "services", "storage", "i18n", "content", "config", "catalogs", "checks", "logs"},
    "storage": {"app", "runtime", "cli", "admin_cli", "channels", "services"},
    "services": {"app", "runtime", "cli", "admin_cli", "channels"},
    "channels": {"app", "runtime", "cli", "admin_cli", "storage"},
    "web": {"app", "runtime", "cli", "admin_cli", "storage", "channels"},  # the dashboard sees services/dashboard.py only
}
# SQL is written in capitals here (the project's style), which keeps English prose out of the net.
SQL = re.compile(r"\b(SELECT\b.*\bFROM|INSERT (OR \w+ )?INTO|UPDATE \w+ SET|DELETE FROM|CREATE (TABLE|INDEX))\b")


def bot_imports(source: str, package: tuple[str, ...]) -> list[tuple[int, str]]:
    """``(line, first part under bot/)`` of every import of the bot's own modules in ``source``,
    a module of ``package`` (e.g. ``("bot", "services")``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
                names = [target] if node.module else [target + [a.name] for a in node.names]
            else:
                names = [(node.module or "").split(".")]
            found += [(node.lineno, n[1]) for n in names if len(n) > 1 and n[0] == "bot"]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[1]) for a in node.names if a.name.startswith("bot.")]
    return found


def layer_offences(layer: str) -> list[str]:
    offences = []
    for path in sorted((BOT / layer).rglob("*.py")):
        package = path.relative_to(BOT.parent).with_suffix("").parts[:-1]
        for line, target in bot_imports(path.read_text(encoding="utf-8"), package):
            if target in LAYERS[layer]:
                offences.append(f"{path.relative_to(BOT.parent)}:{line} imports bot.{target}")
    return offences


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_each_layer_imports_only_what_it_may(layer):
    assert list((BOT / layer).rglob("*.py")), layer
    assert layer_offences(layer) == []


def test_sql_is_written_only_in_storage():
    offences, seen = [], 0
    for path in sorted(BOT.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        hits = [m.group(0) for m in SQL.finditer(text)]
        if path.is_relative_to(BOT / "storage"):
            seen += len(hits)
        elif hits:
            offences.append(str(path.relative_to(BOT.parent)))
    assert seen > 20  # the pattern really finds the storage layer's SQL
    assert offences == []


def test_the_layer_scanner_resolves_relative_imports():
    source = ("from ..storage.db import Database\nfrom ..channels import telegram\nfrom .. import app\nfrom . import clock\n"
              "import bot.runtime\nfrom bot.core.messages import Say\n")
    found = sorted(t for _, t in bot_imports(source, ("bot", "services")))
    assert found == ["app", "channels", "core", "runtime", "services", "storage"]
    assert SQL.search("UPDATE outbox SET status = 'sent'") and SQL.search("SELECT id FROM leads")
    assert not SQL.search("Select the sector from the list") and not SQL.search("please update your profile set")


def core_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """Which core module imports which (every import, those for type checking too)."""
    graph: dict[str, set[str]] = {name: set() for name in sources}
    for name, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or "").startswith("bot.core")):
                module = (node.module or "").removeprefix("bot.core").lstrip(".")
                targets = [module.split(".")[0]] if module else [a.name for a in node.names]
                graph[name] |= {t for t in targets if t in sources and t != name}
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle, as a path that ends where it starts; [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start, [])):
            return found
    return []


def test_core_modules_import_one_another_without_a_circle():
    sources = {p.stem: p.read_text(encoding="utf-8") for p in core_files()}
    graph = core_graph(sources)
    assert {"leads", "training"} <= graph["features"] and "router" in graph["engine"]  # the graph really is read
    assert cycle_in(graph) == []


FEATURES = {"training", "leads", "broadcast", "funnel", "reminders", "segments", "templates", "features"}


def test_the_engine_knows_no_feature_only_the_router():
    """Features register with the router; the engine reaches them only through it (``features.standard()``)."""
    graph = core_graph({p.stem: p.read_text(encoding="utf-8") for p in core_files()})
    assert graph["engine"] & FEATURES == set(), graph["engine"]
    assert graph["router"] & FEATURES == set()
    assert {m for m, imports in graph.items() if "features" in imports} == set()  # only the composition root picks them


def test_the_cycle_finder_finds_a_circle_through_type_checking_imports():
    sources = {
        "engine": "from . import leads\n",
        "leads": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .engine import Engine\n",
        "messages": "",
    }
    assert cycle_in(core_graph(sources)) == ["engine", "leads", "engine"]
    assert cycle_in(core_graph({**sources, "leads": "from .messages import Say\n"})) == []
