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

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ggzy.security.crypto import Aead, Digest
from ggzy.validation.options import DealCodeCheck, ValidationOptions

__all__ = [
    "AUDIT_RETENTION_FLOOR_DAYS",
    "AuditSettings",
    "BackupSettings",
    "HubSettings",
    "NodeSettings",
    "OpsSettings",
    "PullSource",
    "SecuritySettings",
    "Settings",
    "ValidationSettings",
    "config_path",
    "get_settings",
]


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


class OpsSettings(BaseModel):
    """Operations management at the hub (Art. 12, 13, 18, 25–35): thresholds, targets, notification."""

    heartbeat_seconds: float = Field(
        30.0, description="节点心跳间隔秒数 (expected heartbeat interval of the nodes)."
    )
    down_after_beats: int = Field(
        3, ge=1, description="连续多少个心跳间隔未收到心跳即判定节点中断 (missed intervals that mean down)."
    )
    heartbeat_allowance_seconds: float = Field(
        5.0,
        ge=0,
        description="可用率计算中每个心跳覆盖一个心跳间隔再加此秒数（送达抖动），不受立案宽限影响"
        " (a beat keeps its node up for one interval plus this delivery allowance in the availability figures).",
    )
    probe_seconds: float = Field(
        60.0,
        gt=0,
        description="国家平台探测节点的间隔秒数，一次探测结果至多代表这么久 (hub → node probe interval; a result holds this long).",
    )
    outage_lead_hours: float = Field(
        24.0, ge=0, description="计划停用须至少提前多少小时通知，方可不计入可用率 (notice lead time)."
    )
    node_down_incident_seconds: float = Field(
        300.0, description="节点中断超过多少秒自动立案 (node down this long opens an incident)."
    )
    error_rate_jump: float = Field(
        0.10, description="当日错误率比前7日高出多少即自动立案 (absolute rise of the rejection rate)."
    )
    error_rate_min_records: int = Field(
        50, description="当日至少多少条记录才判断错误率突增 (minimum records)."
    )
    realtime_late_seconds: float = Field(
        600.0, description="实时数据超过多少秒未送达即立案 (realtime lateness)."
    )
    disk_threshold: float = Field(0.90, description="前置机磁盘使用率超过此值即立案 (disk usage).")
    backup_max_age_days: int = Field(7, description="备份超过多少天未验证即立案 (backup verification age).")
    drill_max_age_days: int = Field(365, description="多少天内须至少演练一次 (a drill at least this often).")
    report_due_hours: float = Field(
        24.0, description="自动发现的故障须在多少小时内提交故障报告 (fault report due after an incident)."
    )
    rectification_days: int = Field(30, description="责令限期改正的默认期限天数 (rectification deadline).")
    targets: dict[str, float] = Field(
        default_factory=lambda: {"node": 0.98, "network": 0.99, "system": 0.99},
        description="可用率目标 (availability targets: node, network, system).",
    )
    weights: dict[str, float] = Field(
        default_factory=dict,
        description="考核指标权重，未列出的为1（默认等权）(indicator weights; default 1 each).",
    )
    smtp_host: str | None = Field(None, description="通知邮件 SMTP 服务器 (SMTP host; none: no email).")
    smtp_port: int = Field(25, description="SMTP 端口 (SMTP port).")
    smtp_starttls: bool = Field(False, description="SMTP 使用 STARTTLS (STARTTLS).")
    smtp_user: str | None = Field(None, description="SMTP 用户名 (SMTP user).")
    smtp_password: str | None = Field(None, description="SMTP 密码 (SMTP password).")
    smtp_from: str = Field("ggzy-ops@localhost", description="通知邮件发件人 (sender address).")
    webhook_url: str | None = Field(None, description="通知 Webhook 地址 (webhook URL; none: no webhook).")
    notify_timeout_seconds: float = Field(10.0, description="通知发送超时秒数 (notification timeout).")
    national_duty_emails: list[str] = Field(
        default_factory=list, description="国家平台值班邮箱 (national duty addresses, always notified)."
    )
    node_probe_urls: dict[str, str] = Field(
        default_factory=dict,
        description="国家平台探测节点的地址，按节点编号 (hub → node reachability probe URL per node id).",
    )
    evidence_max_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        description="整改答复所附证明材料的最大字节数 (largest evidence file of a rectification answer).",
    )


AUDIT_RETENTION_FLOOR_DAYS = 366


class AuditSettings(BaseModel):
    """The audit log of hub and node alike (Art. 24; 等保 8.1.4.3)."""

    retention_days: int = Field(
        AUDIT_RETENTION_FLOOR_DAYS,
        description="审计日志在库中至少保留天数，只能调大，不得少于 366 (retention; upward only, floor 366).",
    )
    checkpoint_every: int = Field(
        100, ge=1, description="每写入多少条审计记录做一次签名检查点 (entries between signed checkpoints)."
    )
    checkpoint_minutes: float = Field(
        1.0,
        gt=0,
        description="距上次检查点多少分钟后再做一次；服务也按此间隔为末尾做检查点并送往异地锚点，即末尾最多这么久未受保护 (minutes between signed checkpoints; the services seal the tail and anchor it off the host this often).",
    )
    anchor_syslog: str | None = Field(
        None,
        description="审计检查点另送的 syslog 地址：udp://主机:514、tcp://主机:514 或 /dev/log；不设则只写异地锚点文件 (syslog destination of audit anchors).",
    )
    archive_dir: Path = Field(
        Path("var/audit-archive"), description="审计日志归档文件目录 (directory of signed archive files)."
    )
    export_dir: Path = Field(Path("var/audit-export"), description="审计日志导出目录 (export directory).")

    @field_validator("retention_days")
    @classmethod
    def _upward_only(cls, value: int) -> int:
        if value < AUDIT_RETENTION_FLOOR_DAYS:
            raise ValueError(
                f"E-AUDIT-RETENTION 审计日志保留期不得少于 {AUDIT_RETENTION_FLOOR_DAYS} 天（配置为 {value}）"
                f" / audit retention must be at least {AUDIT_RETENTION_FLOOR_DAYS} days"
            )
        return value


class BackupSettings(BaseModel):
    """Backups of the hub's or the node's database (Art. 21; 等保 8.1.4.9)."""

    dir: Path = Field(Path("var/backups"), description="备份文件目录 (backup directory).")
    offsite_dir: Path | None = Field(
        None, description="异地副本目录，如挂载的异地存储 (off-host copy directory, e.g. a mounted share)."
    )
    key_file: Path = Field(
        Path("var/keys/backup.key"),
        description="备份加密密钥文件，不得放在备份目录中 (backup key file; never beside the backups).",
    )
    cipher: Aead = Field(Aead.SM4_GCM, description="备份加密算法 SM4-GCM / AES-256-GCM (backup cipher).")
    keep_days: int = Field(30, ge=1, description="备份保留天数 (keep backups this many days).")
    keep_min: int = Field(
        7, ge=1, description="无论多旧至少保留的最新备份份数 (always keep this many newest backups)."
    )
    scratch_dir: Path | None = Field(
        None, description="恢复校验用的临时目录，默认系统临时目录 (scratch directory for restore checks)."
    )


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
    clock_tolerance_seconds: int = Field(
        300,
        ge=0,
        description="发布时间最多可超前国家平台时钟多少秒，超过即拒收 (publication times further ahead are refused).",
    )
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
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="可信反向代理的网段 CIDR：仅来自这些地址的 X-Forwarded-For/-Proto 才被采信；默认不信任任何转发头 (reverse proxies whose forwarding headers are trusted; none by default).",
    )
    ops: OpsSettings = Field(default_factory=OpsSettings, description="运行管理 (operations management).")
    portal_refresh_seconds: float = Field(
        5.0, description="门户拒收记录投影的刷新间隔秒数 (portal projection catch-up interval)."
    )
    field_cipher: Aead = Field(
        Aead.SM4_GCM,
        description="敏感字段（未脱敏的身份证号、电话等）落库加密算法 (at-rest cipher of sensitive fields).",
    )


class PullSource(BaseModel):
    """One incremental query against the province's own database."""

    name: str = Field(description="来源名称 (source name, also the cursor's name).")
    url: str = Field(description="省级平台数据库地址 (SQLAlchemy URL of the provincial database).")
    table: str = Field(description="数据规范表名或 DATA_NO (the spec table the rows belong to).")
    query: str = Field(
        description="查询语句，须按游标列升序并用 :cursor 取大于游标的行 (SQL selecting rows with cursor > :cursor)."
    )
    cursor_column: str = Field("UPDATE_TIME", description="游标列 (update-time or id column).")
    initial_cursor: str = Field(
        "1900-01-01 00:00:00",
        description="首次抽取时的游标起点；时间列用默认值，数值列请填 0 (cursor before the first poll; 0 for numeric columns).",
    )
    category: str | None = Field(
        None, description="数据类别；不填则按发布时间规则判断 (category; rule when empty)."
    )
    op_column: str | None = Field(None, description="给出 insert/update/delete 的列 (column giving the op).")
    published_column: str | None = Field(
        None,
        description="发布时间列；实时交易信息无发布时间（且表中无发布时间字段）将被拒收 "
        "(column giving the publication time; realtime trade records without one are refused).",
    )
    interval_seconds: int = Field(30, description="轮询间隔秒数 (polling interval).")


class SecuritySettings(BaseModel):
    """People's accounts, sign-in and the management interface (等保三级 8.1.4.1, 8.1.4.2, 8.1.4.4).

    Every default is the value used in assessment practice (docs/architecture.md, Security).
    """

    password_min_length: int = Field(8, ge=8, description="口令最短长度 (minimum password length).")
    password_min_classes: int = Field(
        3, ge=1, le=4, description="口令至少包含的字符类别数（大写/小写/数字/符号）(character classes)."
    )
    password_max_age_days: int = Field(90, ge=1, description="口令有效天数，到期须更换 (password lifetime).")
    password_history: int = Field(5, ge=0, description="不得重复使用最近几次口令 (passwords remembered).")
    argon2_time_cost: int = Field(2, ge=1, description="argon2id 迭代次数 (passes).")
    argon2_memory_kib: int = Field(19 * 1024, ge=8 * 1024, description="argon2id 内存 KiB (memory cost).")
    argon2_parallelism: int = Field(1, ge=1, description="argon2id 并行度 (lanes).")
    lockout_failures: int = Field(5, ge=1, description="连续失败多少次锁定账号 (failures before lockout).")
    lockout_minutes: int = Field(30, ge=1, description="账号锁定分钟数 (lockout duration).")
    source_max_failures: int = Field(
        20, ge=1, description="同一来源地址在时间窗内最多失败登录次数 (failed sign-ins per source address)."
    )
    source_window_minutes: int = Field(
        15, ge=1, description="来源地址限速时间窗分钟数 (rate-limit window per source address)."
    )
    session_idle_minutes: int = Field(30, ge=1, description="会话空闲多少分钟后结束 (idle timeout).")
    session_absolute_hours: int = Field(12, ge=1, description="会话最长小时数 (absolute session lifetime).")
    totp_required_for_operators: bool = Field(
        True,
        description="系统操作员登录是否也须动态口令（管理员和审计员始终需要）(TOTP for operators).",
    )
    totp_issuer: str = Field("ggzy-exchange", description="动态口令应用中显示的发行方 (TOTP issuer).")
    cookie_secure: str = Field(
        "auto",
        pattern="^(auto|always|never)$",
        description="会话 Cookie 的 Secure 属性：auto 在 HTTPS 下设置 / always / never (Secure cookie flag).",
    )
    management_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="允许访问管理界面（网页和人员接口）的来源网段 CIDR (management allow-list).",
    )
    metrics_token: str | None = Field(
        None,
        description="管理网段之外的监控系统读取 /metrics 时使用的令牌（Authorization: Bearer）；不设则只允许管理网段 (token for /metrics outside the management networks).",
    )
    privileged_term_days: int = Field(
        365,
        ge=1,
        le=3 * 366,
        description="系统管理员、安全审计员账号任期最长天数，到期不能登录，提前30天提醒 (longest term of privileged accounts).",
    )


class NodeSettings(BaseModel):
    node_id: str = Field(
        "node-01", description="节点编号，与国家平台登记一致 (node id as registered at the hub)."
    )
    province: str = Field("35", description="省份代码（GB/T 2260 前两位）(province prefix).")
    hub_url: str = Field("http://127.0.0.1:8600", description="国家平台地址 (hub base URL).")
    key_file: Path = Field(
        Path("var/node/node.key"), description="签名密钥文件（十六进制）(signing key file, hex)."
    )
    algorithm: str = Field(
        "HMAC-SHA256", description="签名算法 HMAC-SHA256 / HMAC-SM3 (signature algorithm)."
    )
    db_url: str = Field(
        "sqlite:///var/node/outbox.db", description="本地发件箱数据库 (local outbox database)."
    )
    api_host: str = Field("127.0.0.1", description="本地接收接口监听地址 (local intake API host).")
    api_port: int = Field(8610, description="本地接收接口端口 (local intake API port).")
    api_tls_cert: Path | None = Field(
        None, description="本地接收接口 TLS 证书 (local API server certificate, PEM)."
    )
    api_tls_key: Path | None = Field(None, description="本地接收接口 TLS 私钥 (local API server key, PEM).")
    api_tls_client_ca: Path | None = Field(
        None,
        description="验证省级平台客户端证书的 CA，启用双向 TLS (client CA: require client certificates).",
    )
    api_max_body_bytes: int = Field(
        16 * 1024 * 1024, description="本地接收接口请求体最大字节数 (local intake API body limit)."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="本地接口前可信反向代理的网段 CIDR：仅来自这些地址的转发头才被采信；默认不信任 (reverse proxies of the local API whose forwarding headers are trusted; none by default).",
    )
    drop_dir: Path | None = Field(Path("var/node/inbox"), description="文件投递目录 (watched drop folder).")
    drop_settle_seconds: float = Field(
        5.0,
        description="投递文件的大小和修改时间保持不变多少秒后才读取；以改名方式放入的文件同样等待 (a file must be unchanged this long).",
    )
    max_record_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="单条记录序列化后的最大字节数，超过即拒收 E-INPUT-TOO-LARGE (largest serialised record).",
    )
    intake_chunk: int = Field(
        500,
        ge=1,
        description="投递文件每次提交的记录条数：每块一个事务，连同读取进度 (records per committed chunk of a file).",
    )
    file_max_records: int = Field(
        2_000_000, ge=1, description="单个投递文件最多记录（行）数 (records or rows per file)."
    )
    file_max_line_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="文件中一行、一个 XML 数据元素或一个 XLSX 行的最大字节数 (longest line, XML envelope or XLSX row).",
    )
    xlsx_max_inflated_bytes: int = Field(
        2 * 1024**3,
        ge=1024 * 1024,
        description="XLSX 解压后的总字节数上限（防压缩炸弹）(inflated size of all entries of an .xlsx).",
    )
    xlsx_max_ratio: int = Field(
        200,
        ge=10,
        description="XLSX 中超过 1 MiB 的条目允许的最大压缩比 (largest compression ratio of an .xlsx entry over 1 MiB).",
    )
    xml_max_bytes: int = Field(2 * 1024**3, ge=1024, description="XML 文件最大字节数 (largest XML file).")
    xml_max_depth: int = Field(32, ge=4, description="XML 元素最大嵌套层数 (deepest XML nesting).")
    pull: list[PullSource] = Field(
        default_factory=list, description="数据库增量抽取来源 (database pull sources)."
    )
    clock_tolerance_seconds: int = Field(
        300,
        ge=0,
        description="发布时间最多可超前本机时钟多少秒，超过即拒收，与国家平台一致 (publication times further ahead are refused).",
    )
    realtime_window_hours: float = Field(
        24,
        description="未标类别时，发布时间在此时长内视为实时数据 (unlabelled records published within this are realtime).",
    )
    redact_personal: str = Field(
        "mask", description="个人信息处理：mask 脱敏 / remove 删除 (personal fields policy)."
    )
    hold_invalid: bool = Field(
        True, description="预校验有错误的记录暂存待更正，不上传 (hold records with errors)."
    )
    assign_deal_code: bool = Field(
        False, description="为缺少统一交易标识码的交易赋码 (assign missing 统一交易标识码)."
    )
    assigner_uscc: str | None = Field(
        None, description="赋码使用的交易系统标识码 (USCC used when assigning codes)."
    )
    deal_code_trade_class: str | None = Field(
        None,
        description="赋码时记录未给出交易分类则用此分类，不填按交易领域默认 (trade class when the record has none).",
    )
    batch_size: int = Field(500, description="每批记录数 (records per batch).")
    channel2_rate: float = Field(
        2000, description="第二通道每秒最多上传记录数 (channel 2 records per second)."
    )
    retry_base_seconds: float = Field(1.0, description="重试退避初始秒数 (first retry delay).")
    retry_max_seconds: float = Field(60.0, description="重试退避上限秒数 (longest retry delay).")
    hub_timeout_seconds: float = Field(
        30.0, description="等待国家平台应答的超时秒数 (read timeout of a request to the hub)."
    )
    breaker_failures: int = Field(
        5, description="连续失败多少次后断路 (failures that open the circuit breaker)."
    )
    breaker_open_seconds: float = Field(
        30.0, description="断路后多少秒再试 (how long the breaker stays open)."
    )
    feedback_interval_seconds: float = Field(
        5.0, description="拉取反馈的间隔秒数 (feedback polling interval)."
    )
    heartbeat_seconds: float = Field(30.0, description="心跳间隔秒数 (heartbeat interval).")
    latency_alert_seconds: float = Field(
        480.0, description="实时数据发布后多少秒未被接收即告警 (realtime latency alert)."
    )
    disk_path: Path = Field(
        Path("var/node"), description="监控容量的数据卷 (volume watched by the disk guard)."
    )
    disk_warn: float = Field(0.80, description="磁盘使用率告警阈值 (warn).")
    disk_clean: float = Field(0.90, description="磁盘使用率自动清理阈值 (clean accepted data).")
    disk_refuse: float = Field(0.95, description="磁盘使用率拒收阈值 (refuse intake).")
    retention_days: int = Field(
        30, description="已被接收的数据在本地保留天数 (keep accepted records this long)."
    )
    reconcile_at: str = Field("02:30", description="每日自动对账时间（北京时间）(daily reconciliation time).")
    history_days: int = Field(
        14,
        ge=1,
        description="门户图表保留的心跳与磁盘历史天数 (days of heartbeat/disk history kept for the portal).",
    )
    platform_health_url: str | None = Field(
        None, description="省级平台健康检查地址 (provincial platform health URL)."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GGZY_", env_nested_delimiter="__", extra="ignore")

    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    hub: HubSettings = Field(default_factory=HubSettings)
    node: NodeSettings = Field(default_factory=NodeSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)

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
