"""One head for people who add nothing; one more per user branch in ``JOBS_MIGRATIONS``;
a setting that names nothing usable is a clear error."""

from __future__ import annotations

import pytest

from app.db import migrations
from tests.support import ROOT


def test_heads_with_and_without_a_user_branch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(migrations.SETTING, raising=False)
    ours = migrations.script_heads()
    assert len(ours) == 1
    monkeypatch.setenv(migrations.SETTING, "examples.shopnotes.migrations")
    assert migrations.script_heads() == ours | {"shopnotes_0001"}
    # A directory path works as well as a package, and naming it twice changes nothing.
    monkeypatch.setenv(migrations.SETTING, f"{ROOT}/examples/shopnotes/migrations, "
                                           "examples.shopnotes.migrations")
    assert migrations.script_heads() == ours | {"shopnotes_0001"}


@pytest.mark.parametrize(("value", "message"), [
    ("nowhere.migrations", "JOBS_MIGRATIONS names 'nowhere.migrations', which cannot be "
                           "imported"),
    ("examples.shopnotes.jobs", "JOBS_MIGRATIONS names 'examples.shopnotes.jobs', which is not "
                                "an importable package"),
    ("./no/such/dir", "JOBS_MIGRATIONS names './no/such/dir', which is not a directory"),
])
def test_a_setting_naming_nothing_usable_is_refused(value: str, message: str) -> None:
    with pytest.raises(migrations.MigrationsSettingError) as refused:
        migrations.extra_locations(value)
    assert str(refused.value).startswith(message)
