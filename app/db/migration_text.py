"""SQL text of an earlier migration, for a later one that redefines (or restores) it.

Alembic's version files are not a package, so a migration that replaces a function keeps
one copy of its text by loading the file that first defined it.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

VERSIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"


def migration_module(filename: str) -> ModuleType:
    """The migration module ``migrations/versions/<filename>``, loaded by path."""
    path = VERSIONS / filename
    spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def function_text(sql: str, name: str) -> str:
    """The ``CREATE FUNCTION <name>(...) ... $$;`` statement of ``name`` in ``sql``, made a
    ``CREATE OR REPLACE``."""
    match = re.search(
        rf"CREATE (?:OR REPLACE )?FUNCTION {re.escape(name)}\(.*?\$\$;", sql, flags=re.S)
    assert match is not None, f"no function {name} in this text"
    return "CREATE OR REPLACE" + match.group(0)[len("CREATE"):].replace(" OR REPLACE", "", 1)
