"""Where Alembic finds migration scripts: ours, plus a user's, named by ``JOBS_MIGRATIONS``.

A user package ships its own Alembic versions directory and lists it in ``JOBS_MIGRATIONS``
(comma-separated; each entry a package, ``myapp.migrations``, or a directory path). Its
scripts form a branch of their own (``down_revision = None``, a branch label, and
``depends_on`` the pgjobs revision they need), so pgjobs can add migrations without the two
histories ever needing a merge: ``alembic upgrade heads`` applies both. With nothing
listed there is one head, as before.

Alembic reads version locations from its ini file, which cannot see the environment, so
``migrations/env.py`` adds the listed directories to the script directory before any
revision is read; ``script_heads()`` (the health checks) does the same. Commands that do not
run ``env.py`` (``alembic heads``, ``alembic history``) list pgjobs' revisions only.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

ROOT = Path(__file__).resolve().parent.parent.parent
SETTING = "JOBS_MIGRATIONS"


class MigrationsSettingError(ValueError):
    """``JOBS_MIGRATIONS`` names something that is not a directory of migration scripts."""


def _directory(entry: str) -> Path:
    """An entry of ``JOBS_MIGRATIONS`` as an absolute directory."""
    looks_like_path = os.sep in entry or entry.startswith((".", "~")) or not all(
        part.isidentifier() for part in entry.split("."))
    if looks_like_path:
        path = Path(entry).expanduser().resolve()
        if not path.is_dir():
            raise MigrationsSettingError(f"{SETTING} names {entry!r}, which is not a directory")
        return path
    try:
        spec = importlib.util.find_spec(entry)
    except (ImportError, ValueError) as exc:
        raise MigrationsSettingError(
            f"{SETTING} names {entry!r}, which cannot be imported: {exc}") from None
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise MigrationsSettingError(
            f"{SETTING} names {entry!r}, which is not an importable package (a directory "
            "with an __init__.py, on the Python path) nor a directory")
    return Path(locations[0]).resolve()


def extra_locations(raw: str | None = None) -> list[str]:
    """The user's version directories, in the order listed (none when the setting is unset)."""
    if raw is None:
        raw = os.environ.get(SETTING, "")
    entries = [entry.strip() for entry in raw.split(",") if entry.strip()]
    paths = list(dict.fromkeys(str(_directory(entry)) for entry in entries))
    ours = str((ROOT / "migrations" / "versions").resolve())
    return [path for path in paths if path != ours]


def use_extra_locations(script: ScriptDirectory) -> list[str]:
    """Add ``JOBS_MIGRATIONS``' directories to ``script`` (before it reads any revision)."""
    extra = extra_locations()
    if not extra:
        return []
    current = list(script.version_locations) or [os.path.join(script.dir, "versions")]
    script.version_locations = [*current, *(p for p in extra if p not in current)]
    # Both are computed once, on first use; a command that ran env.py has not used them yet,
    # but a caller that did (script_heads on a reused object) must not keep stale ones.
    script.__dict__.pop("_version_locations", None)
    if "_revision_map" in script.revision_map.__dict__:
        from alembic.script.revision import RevisionMap

        script.revision_map = RevisionMap(script._load_revisions)
    return extra


def script_directory() -> ScriptDirectory:
    """Our script directory with the user's versions added, as ``alembic`` will see it."""
    # Imported here: alembic is slow to import and only migrations and health need it.
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    script = ScriptDirectory.from_config(config)
    use_extra_locations(script)
    return script


def script_heads() -> set[str]:
    """The head revision(s) the code ships: ours, and one per user branch."""
    return set(script_directory().get_heads())


def known_revisions() -> set[str]:
    """Every revision the scripts define (to tell a database ahead of us from one behind)."""
    return {script.revision for script in script_directory().walk_revisions()}
