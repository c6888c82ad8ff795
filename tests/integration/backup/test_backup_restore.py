"""Backups on SQLite and PostgreSQL: make one, damage the live database, restore, lose nothing accepted
before the backup; verify records its result; a changed or truncated file and a wrong key are refused;
retention keeps the newest; the key is never beside the backups."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text

from ggzy.backup.service import (
    BackupError,
    create_backup,
    list_backups,
    prune_backups,
    restore_backup,
    verify_backup,
)
from ggzy.backup.site import Site
from ggzy.hub.app import build_state
from ggzy.hub.ingest import NodeIdentity, ingest_batch
from ggzy.hub.models import audit_log, records
from ggzy.hub.registry import add_node
from ggzy.hub.site import hub_site
from ggzy.settings import BackupSettings, HubSettings, Settings
from ggzy.simulate import province_systems, simulate
from ggzy.store.database import writing

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def _site(db_url: str, tmp_path: Path) -> Site:
    settings = Settings(hub=HubSettings(db_url=db_url, key_dir=tmp_path / "keys"))
    return hub_site(settings)


def _backup_settings(tmp_path: Path, **options: object) -> BackupSettings:
    values: dict[str, object] = {
        "dir": tmp_path / "backups",
        "offsite_dir": tmp_path / "offsite",
        "key_file": tmp_path / "keys" / "backup.key",
        "scratch_dir": tmp_path / "scratch",
    }
    return BackupSettings.model_validate(values | options)


def _accepted(engine: object) -> set[tuple[str, str, int, str]]:
    with engine.connect() as connection:  # type: ignore[attr-defined]
        rows = connection.execute(
            select(records.c.table_name, records.c.key, records.c.version, records.c.digest)
        )
        return {tuple(r) for r in rows}  # type: ignore[misc]


def _upload(state: object, node: object, batch: str, seed: int, transactions: int) -> int:
    start = dt.datetime.now(SHANGHAI).replace(tzinfo=None) - dt.timedelta(days=40)
    items = simulate("35", seed=seed, transactions=transactions, start=start, days=30, category="history")
    result = ingest_batch(
        state.engine,
        state.validator,
        state.audit,
        node,
        2,
        batch,  # type: ignore[attr-defined]
        [i.record for i in items],
        f"digest-{batch}",
    )
    return int(result.receipt["accepted"])


def test_backup_damage_restore_loses_nothing_accepted_before(hub_db_url: str, tmp_path: Path) -> None:
    site = _site(hub_db_url, tmp_path)
    state = build_state(HubSettings(db_url=hub_db_url, key_dir=tmp_path / "keys"))
    with writing(state.engine) as connection:
        registered = add_node(
            connection, "fj-01", "35", platform_codes=list(province_systems("35", 1).platform_codes)
        )
    node = NodeIdentity(registered.node_id, "35", frozenset(registered.platform_codes))
    assert _upload(state, node, "b1", 1, 4) > 0
    before = _accepted(state.engine)
    settings = _backup_settings(tmp_path)
    made = create_backup(site, settings)
    assert made.row_counts["records"] == len(before)
    assert (tmp_path / "offsite" / made.path.name).is_file()
    assert _upload(state, node, "b2", 2, 2) > 0  # accepted after the backup: may be lost by a restore
    with writing(state.engine) as connection:  # the damage
        connection.execute(delete(records))
        connection.execute(text("DROP TABLE feed"))
    state.engine.dispose()
    restored, safety = restore_backup(site, settings, made.path.name)
    assert restored == made.path and safety is not None and safety.kind == "safety"
    after = _accepted(state.engine)
    assert before <= after and after == before
    with state.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(text("feed"))).scalar_one() >= 1
        assert state.audit.verify(connection) is None  # the restored chain is whole
        last = connection.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(1)).one()
    assert last.action == "backup.restore" and last.detail["safety_snapshot"] == safety.path.name
    state.engine.dispose()


def test_verify_records_its_result_and_finds_damage(hub_db_url: str, tmp_path: Path) -> None:
    site = _site(hub_db_url, tmp_path)
    build_state(HubSettings(db_url=hub_db_url, key_dir=tmp_path / "keys")).engine.dispose()
    settings = _backup_settings(tmp_path)
    made = create_backup(site, settings)
    result = verify_backup(site, settings)
    assert result.passed, result.problems
    assert result.file == made.path and result.row_counts == made.row_counts
    listed = list_backups(site, settings)
    assert listed[0].path == made.path and listed[0].last_verification is not None
    assert listed[0].last_verification["outcome"] == "passed" and listed[0].last_verification["seconds"] >= 0
    data = bytearray(made.path.read_bytes())
    data[-40] ^= 0x01  # one flipped bit in the last chunk
    made.path.write_bytes(bytes(data))
    failed = verify_backup(site, settings, made.path.name)
    assert not failed.passed and "E-BACKUP-CHECKSUM" in failed.problems[0]
    made.path.with_name(made.path.name + ".json").unlink()  # without the manifest, the cipher still notices
    failed = verify_backup(site, settings, made.path.name)
    assert not failed.passed and "E-BACKUP-DAMAGED" in failed.problems[0]


def test_truncated_backup_and_wrong_key_are_refused(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    site = _site(db_url, tmp_path)
    build_state(HubSettings(db_url=db_url, key_dir=tmp_path / "keys")).engine.dispose()
    settings = _backup_settings(tmp_path)
    made = create_backup(site, settings)
    made.path.with_name(made.path.name + ".json").unlink()
    full = made.path.read_bytes()
    made.path.write_bytes(full[: len(full) - 20])
    assert "E-BACKUP-DAMAGED" in verify_backup(site, settings, made.path.name).problems[0]
    made.path.write_bytes(full)
    other = _backup_settings(tmp_path, key_file=tmp_path / "other.key")
    problem = verify_backup(site, other, made.path.name).problems[0]
    assert "E-BACKUP-DAMAGED" in problem and "key" in problem
    with pytest.raises(BackupError) as refused:
        create_backup(site, _backup_settings(tmp_path, key_file=tmp_path / "backups" / "k.key"))
    assert refused.value.code == "E-BACKUP-KEY-PLACEMENT"


def test_prune_keeps_the_newest_and_removes_the_old(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    site = _site(db_url, tmp_path)
    build_state(HubSettings(db_url=db_url, key_dir=tmp_path / "keys")).engine.dispose()
    settings = _backup_settings(tmp_path, keep_days=30, keep_min=2)
    now = dt.datetime(2027, 1, 31, tzinfo=dt.UTC)
    made = [
        create_backup(site, settings, kind="scheduled", now=now - dt.timedelta(days=d))
        for d in (60, 45, 40, 10)
    ]
    removed = prune_backups(site, settings, now=now)
    # Newest two kept by count (10 and 40 days old); of the rest, older than 30 days go.
    assert sorted(removed) == sorted([made[0].path, made[1].path])
    left = {b.path.name for b in list_backups(site, settings)}
    assert left == {made[2].path.name, made[3].path.name}
    assert sorted(p.name for p in (tmp_path / "offsite").glob("*.bak")) == sorted(left)


def test_backup_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    """A backup holds the whole database: with the usual umask 022 it was world-readable (0644),
    here and in the off-host copy, manifests included."""
    import os
    import stat

    db_url = f"sqlite:///{tmp_path / 'hub.db'}"
    site = _site(db_url, tmp_path)
    build_state(HubSettings(db_url=db_url, key_dir=tmp_path / "keys")).engine.dispose()
    old = os.umask(0o022)
    try:
        made = create_backup(site, _backup_settings(tmp_path))
    finally:
        os.umask(old)
    files = [*(tmp_path / "backups").iterdir(), *(tmp_path / "offsite").iterdir()]
    assert made.path in files and len(files) >= 4  # container and manifest, here and off-host
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in files}
    assert all(mode == 0o600 for mode in modes.values()), modes
    assert stat.S_IMODE((tmp_path / "backups").stat().st_mode) & 0o077 == 0
