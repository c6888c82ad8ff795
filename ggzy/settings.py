"""One settings object for every part of the system.

Values come from, in order of precedence: keyword arguments, environment variables (``GGZY_``
prefix, ``__`` between section and key, e.g. ``GGZY_VALIDATION__DEAL_CODE_CHECK=strict``), the TOML
file named by ``GGZY_CONFIG`` (default ``./ggzy.toml`` when it exists), then the defaults below.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import cache
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ggzy.security.crypto import Digest
from ggzy.validation.options import DealCodeCheck, ValidationOptions

__all__ = ["HubSettings", "Settings", "ValidationSettings", "config_path", "get_settings"]


class ValidationSettings(BaseModel):
    deal_code_check: DealCodeCheck = Field(
        DealCodeCheck.WARN,
        description="统一交易标识码校验码检查：strict 拒收 / warn 警告 / off 不检查 (check character of the deal code).",
    )
    unit_suspect_min_yuan: Decimal = Field(
        Decimal(50), description="以元计的金额低于此值时提示元/万元混淆 (suspicious 元 amount below this)."
    )
    unit_suspect_max_wan: Decimal = Field(
        Decimal(1_000_000),
        description="以万元计的金额达到此值时提示元/万元混淆 (suspicious 万元 amount from this).",
    )
    check_personal: bool = Field(True, description="报告未脱敏的个人信息 (report unmasked personal data).")

    def options(self) -> ValidationOptions:
        return ValidationOptions(
            deal_code_check=self.deal_code_check,
            unit_suspect_min_yuan=self.unit_suspect_min_yuan,
            unit_suspect_max_wan=self.unit_suspect_max_wan,
            check_personal=self.check_personal,
        )


def config_path() -> Path | None:
    named = os.environ.get("GGZY_CONFIG")
    if named:
        return Path(named)
    default = Path("ggzy.toml")
    return default if default.exists() else None


class HubSettings(BaseModel):
    db_url: str = Field(
        "sqlite:///var/hub.db",
        description="数据库地址 (SQLAlchemy URL; postgresql+psycopg://… in production).",
    )
    host: str = Field("127.0.0.1", description="监听地址 (listen address).")
    port: int = Field(8600, description="监听端口 (listen port).")
    workers: int = Field(1, description="工作进程数 (uvicorn workers).")
    max_batch_records: int = Field(1000, description="每批最多记录数 (records per batch).")
    max_body_bytes: int = Field(8 * 1024 * 1024, description="请求体最大字节数 (request body limit).")
    clock_skew_seconds: int = Field(300, description="签名时间戳允许偏差秒数 (allowed timestamp skew).")
    feed_page_size: int = Field(100, description="反馈每页条数上限 (feedback items per page).")
    maintenance: bool = Field(False, description="维护模式：/readyz 返回 503 (maintenance mode).")
    key_dir: Path = Field(Path("var/keys"), description="密钥目录，不与数据库放在一起 (key directory).")
    audit_digest: Digest = Field(
        Digest.SM3, description="审计日志链的杂凑算法 SM3/SHA256 (audit chain hash)."
    )
    tls_cert: Path | None = Field(None, description="TLS 证书文件 (server certificate, PEM).")
    tls_key: Path | None = Field(None, description="TLS 私钥文件 (server key, PEM).")
    tls_client_ca: Path | None = Field(
        None, description="验证客户端证书的 CA，启用双向 TLS (client CA for mutual TLS)."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GGZY_", env_nested_delimiter="__", extra="ignore")

    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    hub: HubSettings = Field(default_factory=HubSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


@cache
def get_settings() -> Settings:
    return Settings()
