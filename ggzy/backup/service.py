"""Create, verify, restore, list and prune backups of one :class:`~ggzy.backup.site.Site`.

Every backup is a file ``ggzy-<side>-<UTC time>-<kind>.bak`` (see :mod:`ggzy.backup.container`)
with a manifest ``<file>.json`` beside it (what the header says, plus size and SM3 checksum). The
key comes from ``backup.key_file`` and is refused when it lies inside the backup or off-host
directory. Each operation is audited in the database it concerns: ``backup.create``,
``backup.verify``, ``backup.restore`` (in the restored database) and ``backup.prune``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, text
from sqlalchemy.engine import make_url

from ggzy.backup.container import (
    BackupDamaged,
    file_checksum,
    private_file,
    read_container,
    read_header,
    write_container,
)
from ggzy.backup.dump import BackupToolError, count_rows, load_snapshot, take_snapshot
from ggzy.backup.site import Site
from ggzy.security.audit import AuditEntry
from ggzy.security.cipher import SoftwareCipher, load_cipher
from ggzy.settings import BackupSettings
from ggzy.store import make_engine
from ggzy.store.database import writing
from ggzy.store.migrate import upgrade

__all__ = [
    "BackupError",
    "BackupInfo",
    "Verification",
    "backup_cipher",
    "create_backup",
    "list_backups",
    "prune_backups",
    "restore_backup",
    "verify_backup",
]

SUFFIX = ".bak"


class BackupError(Exception):
    def __init__(self, code: str, message_zh: str) -> None:
        super().__init__(f"{code}: {message_zh}")
        self.code = code
        self.message_zh = message_zh


@dataclass(frozen=True, slots=True)
class BackupInfo:
    path: Path
    created_at: dt.datetime
    kind: str
    side: str
    dialect: str
    size: int
    checksum: str
    revision: str
    row_counts: dict[str, int]
    offsite: str | None = None
    last_verification: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Verification:
    file: Path
    passed: bool
    seconds: float
    revision: str
    problems: list[str] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Actor:
    account: str = "-"
    role: str = "-"


def backup_cipher(settings: BackupSettings) -> SoftwareCipher:
    """The backup key, refused when it would be stored with the backups it protects."""
    key = settings.key_file.resolve()
    for folder in (settings.dir, settings.offsite_dir):
        if folder is not None and key.is_relative_to(folder.resolve()):
            raise BackupError(
                "E-BACKUP-KEY-PLACEMENT", f"备份密钥 {settings.key_file} 不得放在备份目录 {folder} 中"
            )
    return load_cipher(settings.key_file, settings.cipher)


def _audit(
    engine: Engine, site: Site, actor: Actor, action: str, target: str, outcome: str, **detail: Any
) -> None:
    with writing(engine) as connection:
        site.audit_log().append(
            connection,
            AuditEntry(
                action=action,
                object=target,
                outcome=outcome,
                account=actor.account,
                role=actor.role,
                detail=detail,
            ),
        )


def _manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _info(manifest: dict[str, Any], path: Path) -> BackupInfo:
    return BackupInfo(
        path=path,
        created_at=dt.datetime.fromisoformat(manifest["created_at"]),
        kind=manifest["kind"],
        side=manifest["side"],
        dialect=manifest["dialect"],
        size=int(manifest["size"]),
        checksum=manifest["checksum"],
        revision=manifest["revision"],
        row_counts=dict(manifest["row_counts"]),
        offsite=manifest.get("offsite"),
    )


def _write_json(path: Path, value: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".part")
    with private_file(temporary) as handle:
        handle.write(json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8"))
    temporary.replace(path)


def create_backup(
    site: Site,
    settings: BackupSettings,
    *,
    kind: str = "manual",
    actor: Actor | None = None,
    now: dt.datetime | None = None,
) -> BackupInfo:
    """Snapshot, compress, encrypt, checksum, copy off-host, register and audit one backup."""
    actor = actor or Actor()
    cipher = backup_cipher(settings)
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    settings.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"ggzy-{site.side.value}-{now:%Y%m%dT%H%M%S%fZ}-{kind}{SUFFIX}"
    path = settings.dir / name
    engine = make_engine(site.db_url)
    try:
        try:
            snapshot = take_snapshot(site.db_url, site.metadata, settings.scratch_dir)
            header = {
                "format": "ggzy-backup/1",
                "side": site.side.value,
                "dialect": snapshot.dialect,
                "created_at": now.isoformat(),
                "kind": kind,
                "revision": snapshot.revision,
                "row_counts": snapshot.row_counts,
            }
            checksum = write_container(path, header, snapshot.payload, cipher)
        except (BackupToolError, OSError) as exc:
            path.with_name(path.name + ".part").unlink(missing_ok=True)
            _audit(engine, site, actor, "backup.create", f"backup:{name}", "failure", error=str(exc)[:300])
            raise BackupError("E-BACKUP-CREATE", f"备份失败：{exc}") from exc
        manifest = header | {"size": path.stat().st_size, "checksum": checksum, "file": name}
        manifest |= {"cipher": cipher.algorithm.value, "key_id": cipher.key_id.hex()}
        if settings.offsite_dir is not None:
            manifest["offsite"] = str(_copy_offsite(path, settings.offsite_dir, checksum))
        _write_json(_manifest_path(path), manifest)
        if settings.offsite_dir is not None:
            _write_json(settings.offsite_dir / _manifest_path(path).name, manifest)
        _register(engine, site, manifest)
        _audit(
            engine,
            site,
            actor,
            "backup.create",
            f"backup:{name}",
            "success",
            checksum=checksum,
            size=manifest["size"],
            offsite=manifest.get("offsite"),
        )
    finally:
        engine.dispose()
    return _info(manifest, path)


def _copy_offsite(path: Path, folder: Path, checksum: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / path.name
    temporary = target.with_name(target.name + ".part")
    with path.open("rb") as source, private_file(temporary) as copy:
        shutil.copyfileobj(source, copy)
        copy.flush()
        os.fsync(copy.fileno())
    if file_checksum(temporary) != checksum:
        temporary.unlink()
        raise BackupError("E-BACKUP-OFFSITE", f"异地副本校验和不符：{target}")
    temporary.replace(target)
    return target


def _register(engine: Engine, site: Site, manifest: dict[str, Any]) -> None:
    backups = site.backup_tables.backups
    with writing(engine) as connection:
        known = connection.execute(
            select(backups.c.id).where(backups.c.file_name == manifest["file"])
        ).first()
        if known is not None:
            return
        connection.execute(
            insert(backups),
            {
                "file_name": manifest["file"],
                "created_at": dt.datetime.fromisoformat(manifest["created_at"]),
                "kind": manifest["kind"],
                "dialect": manifest["dialect"],
                "size": manifest["size"],
                "checksum": manifest["checksum"],
                "schema_revision": manifest["revision"],
                "row_counts": manifest["row_counts"],
                "cipher": manifest["cipher"],
                "key_id": manifest["key_id"],
                "offsite": manifest.get("offsite"),
            },
        )


def _manifests(settings: BackupSettings, side: str) -> list[tuple[dict[str, Any], Path]]:
    if not settings.dir.is_dir():
        return []
    found = []
    for manifest_path in settings.dir.glob(f"ggzy-{side}-*{SUFFIX}.json"):
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        found.append((manifest, manifest_path.with_name(manifest["file"])))
    return sorted(found, key=lambda item: item[0]["created_at"], reverse=True)


def list_backups(site: Site, settings: BackupSettings) -> list[BackupInfo]:
    """Newest first, each with its last recorded restore check."""
    verifications = site.backup_tables.verifications
    engine = make_engine(site.db_url)
    try:
        with engine.connect() as connection:
            last: dict[str, dict[str, Any]] = {}
            for row in connection.execute(select(verifications).order_by(verifications.c.id)).mappings():
                last[row["file_name"]] = dict(row)
    finally:
        engine.dispose()
    infos = []
    for manifest, path in _manifests(settings, site.side.value):
        infos.append(replace(_info(manifest, path), last_verification=last.get(path.name)))
    return infos


def _choose(site: Site, settings: BackupSettings, name: str | None) -> Path:
    if name:
        path = Path(name)
        path = path if path.is_absolute() or path.exists() else settings.dir / name
        if not path.is_file():
            raise BackupError("E-BACKUP-NOT-FOUND", f"找不到备份文件：{name}")
        return path
    found = [p for m, p in _manifests(settings, site.side.value) if m["kind"] != "safety" and p.is_file()]
    if not found:
        raise BackupError("E-BACKUP-NOT-FOUND", f"备份目录 {settings.dir} 中没有{site.side.label}的备份")
    return found[0]


def _check_file(path: Path) -> dict[str, Any]:
    manifest_path = _manifest_path(path)
    if manifest_path.is_file():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
        actual = file_checksum(path)
        if actual != manifest["checksum"]:
            raise BackupError("E-BACKUP-CHECKSUM", f"备份文件校验和不符（文件被改动或损坏）：{path.name}")
    return read_header(path)


def _scratch_url(site: Site, settings: BackupSettings) -> tuple[str, Any]:
    """A new, empty database of the same kind, and how to remove it afterwards."""
    url = make_url(site.db_url)
    if url.get_backend_name() == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="ggzy-verify-", dir=settings.scratch_dir))
        return f"sqlite:///{folder / 'verify.db'}", lambda: shutil.rmtree(folder, ignore_errors=True)
    name = f"ggzy_verify_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url.set(database="postgres"), pool_size=1)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


def verify_backup(
    site: Site, settings: BackupSettings, name: str | None = None, *, actor: Actor | None = None
) -> Verification:
    """Restore a backup (the newest by default) into a scratch database and check it; record the result."""
    from alembic.script import ScriptDirectory

    from ggzy.store.migrate import _config

    actor = actor or Actor()
    started = time.monotonic()
    path = _choose(site, settings, name)
    problems: list[str] = []
    revision, counts = "-", {}
    try:
        header = _check_file(path)
        revision = str(header["revision"])
        _header, payload = read_container(path, backup_cipher(settings))
        scratch_url, drop = _scratch_url(site, settings)
        try:
            load_snapshot(scratch_url, header["dialect"], payload, settings.scratch_dir)
            scratch = make_engine(scratch_url)
            try:
                with scratch.connect() as connection:
                    found = str(
                        connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
                    )
                    counts = count_rows(connection, site.metadata) if found == revision else {}
                    report = site.with_url(scratch_url).audit_log().report(connection)
            finally:
                scratch.dispose()
        finally:
            drop()
        if found != revision:
            problems.append(f"数据库结构版本为 {found}，备份记录为 {revision}")
        if ScriptDirectory.from_config(_config(site.migrations)).get_revision(found) is None:
            problems.append(f"数据库结构版本 {found} 不是本程序已知的版本")
        expected = {k: int(v) for k, v in header["row_counts"].items()}
        differing = {
            t: (expected.get(t), counts.get(t)) for t in expected if counts and expected[t] != counts.get(t)
        }
        if differing:
            problems.append(f"行数不符：{differing}")
        if report.problem is not None:
            problems.append(f"审计日志校验失败：{report.problem.message_zh}")
    except (BackupError, BackupDamaged, BackupToolError, OSError, ValueError, KeyError) as exc:
        problems.append(f"{getattr(exc, 'code', 'E-BACKUP-VERIFY')} {getattr(exc, 'message_zh', exc)}")
    seconds = time.monotonic() - started
    result = Verification(path, not problems, seconds, revision, problems, counts)
    _record_verification(site, actor, result)
    return result


def _record_verification(site: Site, actor: Actor, result: Verification) -> None:
    engine = make_engine(site.db_url)
    try:
        with writing(engine) as connection:
            connection.execute(
                insert(site.backup_tables.verifications),
                {
                    "file_name": result.file.name,
                    "verified_at": dt.datetime.now(dt.UTC),
                    "seconds": round(result.seconds, 3),
                    "outcome": "passed" if result.passed else "failed",
                    "schema_revision": result.revision,
                    "detail": {"problems": result.problems, "row_counts": result.row_counts},
                },
            )
        _audit(
            engine,
            site,
            actor,
            "backup.verify",
            f"backup:{result.file.name}",
            "success" if result.passed else "failure",
            seconds=round(result.seconds, 3),
            problems=result.problems,
        )
    finally:
        engine.dispose()


def restore_backup(
    site: Site,
    settings: BackupSettings,
    name: str | None = None,
    *,
    actor: Actor | None = None,
    safety_snapshot: bool = True,
) -> tuple[Path, BackupInfo | None]:
    """Replace the live database with a backup, after a safety snapshot of what is there now."""
    actor = actor or Actor()
    path = _choose(site, settings, name)
    header = _check_file(path)
    _header, payload = read_container(path, backup_cipher(settings))  # wrong key fails before any change
    safety = create_backup(site, settings, kind="safety", actor=actor) if safety_snapshot else None
    load_snapshot(site.db_url, header["dialect"], payload, settings.scratch_dir)
    engine = make_engine(site.db_url)
    try:
        upgrade(engine, site.migrations)  # a backup from an older release is brought up to this schema
        for manifest, _path in reversed(_manifests(settings, site.side.value)):
            _register(engine, site, manifest)  # backups made after this one are known again
        _audit(
            engine,
            site,
            actor,
            "backup.restore",
            f"backup:{path.name}",
            "success",
            safety_snapshot=safety.path.name if safety else None,
            revision=header["revision"],
        )
    finally:
        engine.dispose()
    return path, safety


def prune_backups(
    site: Site, settings: BackupSettings, *, actor: Actor | None = None, now: dt.datetime | None = None
) -> list[Path]:
    """Remove backups older than ``keep_days``, always keeping the newest ``keep_min`` (and off-host copies)."""
    actor = actor or Actor()
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    limit = now - dt.timedelta(days=settings.keep_days)
    removed: list[Path] = []
    for index, (manifest, path) in enumerate(_manifests(settings, site.side.value)):
        if index < settings.keep_min or dt.datetime.fromisoformat(manifest["created_at"]) >= limit:
            continue
        for folder in (settings.dir, settings.offsite_dir):
            if folder is None:
                continue
            (folder / path.name).unlink(missing_ok=True)
            _manifest_path(folder / path.name).unlink(missing_ok=True)
        removed.append(path)
    if removed:
        engine = make_engine(site.db_url)
        try:
            _audit(
                engine,
                site,
                actor,
                "backup.prune",
                f"backups:{site.side.value}",
                "success",
                removed=[p.name for p in removed],
                keep_days=settings.keep_days,
                keep_min=settings.keep_min,
            )
        finally:
            engine.dispose()
    return removed
