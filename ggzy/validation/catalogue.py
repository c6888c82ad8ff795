"""Every validation rule: a stable code, its layer, severity and messages in Chinese and English.

The codes are a public contract (feedback to nodes, statistics, docs/rules.md): never reuse or
rename one; retire it instead. Messages are ``str.format`` templates over ``field``, ``value``,
``name_zh`` and rule-specific keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["RULES", "Layer", "Rule", "Severity", "rule"]


class Severity(StrEnum):
    ERROR = "error"  # blocks acceptance
    WARNING = "warning"  # reported, does not block


class Layer(StrEnum):
    STRUCTURE = "structure"
    FIELD = "field"
    CROSS_FIELD = "cross-field"
    CROSS_RECORD = "cross-record"
    PRIVACY = "privacy"
    EXCHANGE = "exchange"


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    layer: Layer
    severity: Severity
    title_zh: str
    message_zh: str
    message_en: str
    description: str  # for docs/rules.md, in English


def _r(code: str, layer: Layer, title_zh: str, message_zh: str, message_en: str, description: str) -> Rule:
    severity = Severity.WARNING if code.startswith("W-") else Severity.ERROR
    return Rule(code, layer, severity, title_zh, message_zh, message_en, description)


S, F, X, R, P = Layer.STRUCTURE, Layer.FIELD, Layer.CROSS_FIELD, Layer.CROSS_RECORD, Layer.PRIVACY
E = Layer.EXCHANGE

_ALL = [
    # --- structure: the envelope of the record ---
    _r(
        "E-STRUCT-JSON",
        S,
        "记录无法解析",
        "第{line}行不是合法的JSON：{detail}",
        "line {line} is not valid JSON: {detail}",
        "An input line or item could not be parsed at all.",
    ),
    _r(
        "E-STRUCT-NOT-OBJECT",
        S,
        "记录不是对象",
        "记录必须是JSON对象",
        "a record must be a JSON object",
        "The record is a JSON value other than an object.",
    ),
    _r(
        "E-STRUCT-TABLE",
        S,
        "数据表未知",
        "未知的数据表“{value}”",
        "unknown table {value!r}",
        "`table` is missing or names no table (by English name or DATA_NO) of the specification.",
    ),
    _r(
        "E-STRUCT-OP",
        S,
        "操作类型无效",
        "操作类型“{value}”无效，应为 insert/update/delete",
        "op {value!r} is not insert, update or delete",
        "`op` is missing or not one of insert, update, delete.",
    ),
    _r(
        "E-STRUCT-CATEGORY",
        S,
        "数据类别无效",
        "数据类别“{value}”无效，应为 realtime/history/test",
        "category {value!r} is not realtime, history or test",
        "`category` is present but not one of realtime, history, test.",
    ),
    _r(
        "E-STRUCT-VERSION",
        S,
        "规范版本不受支持",
        "规范版本“{value}”不受支持（可用：{accepted}）",
        "spec version {value!r} is not accepted (accepted: {accepted})",
        "`spec_version` names a version of the specification this release does not accept.",
    ),
    _r(
        "E-STRUCT-DATA",
        S,
        "缺少数据内容",
        "缺少 data 对象",
        "the record has no data object",
        "`data` is missing or not an object (allowed to be absent only for a delete with a key).",
    ),
    _r(
        "E-STRUCT-VALUE-TYPE",
        S,
        "字段值类型错误",
        "字段{field}（{name_zh}）的值必须是字符串",
        "{field} must be a string value",
        "A column value is a list, object or boolean instead of a string.",
    ),
    _r(
        "E-STRUCT-PUBLISHED-AT",
        S,
        "发布时间格式错误",
        "published_at“{value}”不是带时区的ISO 8601时间",
        "published_at {value!r} is not an ISO 8601 time with an offset",
        "`published_at` is present but not an ISO 8601 date-time with a UTC offset.",
    ),
    _r(
        "E-STRUCT-KEY",
        S,
        "业务主键缺失",
        "无法确定业务主键，缺少：{missing}",
        "the business key cannot be formed; missing: {missing}",
        "One or more of the table's business key fields are empty, so the record cannot be identified.",
    ),
    # --- field: one value against its specification ---
    _r(
        "E-FIELD-REQUIRED",
        F,
        "必填项缺失",
        "必填项{field}（{name_zh}）缺失或为空",
        "required field {field} is missing or empty",
        "A field marked 必填 is absent or empty (缺项/漏项).",
    ),
    _r(
        "W-FIELD-UNKNOWN",
        F,
        "未定义的字段",
        "字段{field}不在数据规范中，将被忽略",
        "{field} is not in the specification and is ignored",
        "A column that the table does not define.",
    ),
    _r(
        "E-FIELD-LENGTH",
        F,
        "长度不符",
        "{field}（{name_zh}）应为{expected}个字符，实际{actual}个",
        "{field} must have exactly {expected} characters, not {actual}",
        "A fixed-length field (`C17`, `C40`) has another length.",
    ),
    _r(
        "E-FIELD-TOO-LONG",
        F,
        "超出最大长度",
        "{field}（{name_zh}）最多{expected}个字符，实际{actual}个",
        "{field} may have at most {expected} characters, not {actual}",
        "A variable-length field (`C..600`) is longer than allowed.",
    ),
    _r(
        "E-FIELD-NUMBER",
        F,
        "数值格式错误",
        "{field}（{name_zh}）“{value}”不是数值{notation}",
        "{field} {value!r} is not a number of form {notation}",
        "A number field (`N..20,6`, `N1`) holds something that is not a plain decimal number.",
    ),
    _r(
        "E-FIELD-NUMBER-PRECISION",
        F,
        "数值位数超限",
        "{field}（{name_zh}）“{value}”超出{notation}的位数",
        "{field} {value!r} has more digits than {notation} allows",
        "A number has more integer or decimal digits than its notation allows.",
    ),
    _r(
        "E-FIELD-DATETIME",
        F,
        "时间格式错误",
        "{field}（{name_zh}）“{value}”不符合{notation}格式",
        "{field} {value!r} does not match {notation}",
        "A date or time field is not `yyyyMMddHHmmss`/`yyyyMMdd`.",
    ),
    _r(
        "E-FIELD-DATE-IMPOSSIBLE",
        F,
        "日期不存在",
        "{field}（{name_zh}）“{value}”不是真实存在的日期时间",
        "{field} {value!r} is not a real date/time",
        "The digits have the right shape but name no real moment (month 13, 30 February, hour 24).",
    ),
    _r(
        "E-FIELD-CODE",
        F,
        "代码值不在代码集中",
        "{field}（{name_zh}）“{value}”不在代码集{codelist}中",
        "{field} {value!r} is not in code list {codelist}",
        "A value outside an official code list.",
    ),
    _r(
        "W-FIELD-CODE-PROVISIONAL",
        F,
        "代码值不在暂定代码集中",
        "{field}（{name_zh}）“{value}”不在暂定代码集{codelist}中，请核实",
        "{field} {value!r} is not in provisional code list {codelist}",
        "A value outside a code list whose value set is an assumption; a warning until the official list "
        "is loaded.",
    ),
    _r(
        "E-FIELD-USCC",
        F,
        "统一社会信用代码错误",
        "{field}（{name_zh}）“{value}”不是有效的统一社会信用代码",
        "{field} {value!r} is not a valid unified social credit code",
        "A GB 32100 code with a wrong structure or check character.",
    ),
    _r(
        "E-FIELD-ID-NUMBER",
        F,
        "身份证号码错误",
        "{field}（{name_zh}）不是有效的居民身份证号码",
        "{field} is not a valid resident ID number",
        "A GB 11643 number with a wrong check character, birth date or province.",
    ),
    _r(
        "E-FIELD-SUBJECT-CODE",
        F,
        "主体代码错误",
        "{field}（{name_zh}）“{value}”既不是有效的统一社会信用代码，也不是有效的组织机构代码或身份证号码",
        "{field} {value!r} is neither a valid USCC nor a valid organisation code or ID number",
        "A subject code (bidder, tenderer, supplier …) that fails the check of every identifier type.",
    ),
    _r(
        "E-FIELD-REGION",
        F,
        "行政区划代码错误",
        "{field}（{name_zh}）“{value}”不是有效的行政区划代码",
        "{field} {value!r} is not a GB/T 2260 division code",
        "A region code that is not a real division.",
    ),
    _r(
        "E-FIELD-INDUSTRY",
        F,
        "行业分类代码错误",
        "{field}（{name_zh}）“{value}”不是GB/T 4754门类加两位大类",
        "{field} {value!r} is not a GB/T 4754 section letter followed by two digits",
        "An industry code that is not a GB/T 4754 section letter and a two-digit division.",
    ),
    _r(
        "E-FIELD-FORMAT",
        F,
        "格式错误",
        "{field}（{name_zh}）“{value}”格式错误：{detail}",
        "{field} {value!r} is malformed: {detail}",
        "An e-mail address, URL or phone number of impossible shape.",
    ),
    _r(
        "E-DEAL-CODE-FORMAT",
        F,
        "统一交易标识码格式错误",
        "{field}（{name_zh}）“{value}”不符合统一交易标识码结构（分类代码-交易系统标识码-日期-流水号-校验码）",
        "{field} {value!r} does not have the structure class-USCC-date-serial-check",
        "The 40-character structure of 统一交易标识码 is broken.",
    ),
    _r(
        "E-DEAL-CODE-USCC",
        F,
        "统一交易标识码中的交易系统标识码错误",
        "{field}（{name_zh}）“{value}”中的交易系统标识码校验位错误",
        "the USCC inside {field} {value!r} has a wrong check character",
        "The assigning system's USCC inside the code fails GB 32100.",
    ),
    _r(
        "E-DEAL-CODE-DATE",
        F,
        "统一交易标识码日期错误",
        "{field}（{name_zh}）“{value}”中的日期不存在",
        "the date inside {field} {value!r} does not exist",
        "The date segment of the code is not a real date.",
    ),
    _r(
        "E-DEAL-CODE-CHECK",
        F,
        "统一交易标识码校验码错误（严格模式）",
        "{field}（{name_zh}）“{value}”校验码应为{expected}",
        "the check character of {field} {value!r} should be {expected}",
        "Check character disagrees with ISO 7064 MOD 37-2 and the check mode is `strict`.",
    ),
    _r(
        "W-DEAL-CODE-CHECK",
        F,
        "统一交易标识码校验码不一致",
        "{field}（{name_zh}）“{value}”校验码按MOD 37-2应为{expected}，请核实",
        "the check character of {field} {value!r} would be {expected} by MOD 37-2",
        "Check character disagrees with ISO 7064 MOD 37-2 and the check mode is `warn` (the default).",
    ),
    # --- cross-field: several values of one record ---
    _r(
        "E-XF-CONDITIONAL-REQUIRED",
        X,
        "条件必填项缺失",
        "当{when}为“{value}”时，{field}（{name_zh}）必填",
        "{field} is required when {when} is {value!r}",
        "A field that becomes required by the value of another (项目类别关联代码 = 1 → 投资项目统一代码).",
    ),
    _r(
        "E-XF-CODE-HIERARCHY",
        X,
        "编号层级不一致",
        "{field}“{value}”应以{parent_field}“{parent}”开头并加3位数字",
        "{field} {value!r} must be {parent_field} {parent!r} followed by three digits",
        "项目编号 C17 → 招标项目编号 C20 → 标段编号 C23: each is its parent plus three digits.",
    ),
    _r(
        "E-XF-AMOUNT-NEGATIVE",
        X,
        "金额为负",
        "{field}（{name_zh}）“{value}”不能为负数",
        "{field} {value!r} must not be negative",
        "An amount below zero.",
    ),
    _r(
        "E-XF-AMOUNT-CURRENCY",
        X,
        "缺少币种",
        "{field}（{name_zh}）有金额但缺少币种{other}",
        "{field} has an amount but its currency {other} is empty",
        "An amount without its currency code.",
    ),
    _r(
        "E-XF-AMOUNT-UNIT",
        X,
        "缺少金额单位",
        "{field}（{name_zh}）有金额但缺少金额单位{other}",
        "{field} has an amount but its unit {other} is empty",
        "An amount without its unit (元/万元).",
    ),
    _r(
        "W-XF-AMOUNT-UNIT-SUSPECT",
        X,
        "金额单位疑似错误",
        "{field}（{name_zh}）“{value}”以{unit}计，合计{yuan}元，疑似元/万元混淆",
        "{field} {value!r} in {unit} means {yuan} yuan; 元/万元 confusion suspected",
        "An amount implausibly large or small for its unit (a 元 amount given as 万元 or the reverse).",
    ),
    _r(
        "E-XF-TIME-ORDER",
        X,
        "时间先后顺序错误",
        "{field}（{name_zh}）“{value}”不应晚于{later}“{later_value}”",
        "{field} {value!r} must not be after {later} {later_value!r}",
        "Two times of one record in the wrong order (document period start after end, opening before "
        "submission deadline …).",
    ),
    _r(
        "E-XF-LIST-ITEM",
        X,
        "列表项错误",
        "{field}（{name_zh}）第{position}项“{value}”{problem}",
        "{field} item {position} {value!r} {problem_en}",
        "An item of a ';'-separated list of sections or 统一交易标识码 that is empty, repeated, of the wrong "
        "length, or a section outside the record's tender project (checked item by item).",
    ),
    # --- cross-record: the record against others of the same transaction ---
    _r(
        "E-XR-PARENT-MISSING",
        R,
        "上级记录不存在",
        "找不到{parent_table}中{parent_field}为“{value}”的记录",
        "no {parent_table} record with {parent_field} {value!r}",
        "A record whose parent (project → tender project → section …) is not known.",
    ),
    _r(
        "E-XR-STAGE-MISSING",
        R,
        "前序环节缺失",
        "{table}之前应有{parent_table}（{parent_field}“{value}”），但未找到",
        "{table} needs an earlier {parent_table} with {parent_field} {value!r}",
        "A later stage (result notice) whose earlier stage (tender notice) is absent.",
    ),
    _r(
        "E-XR-STAGE-ORDER",
        R,
        "环节时间倒序",
        "{table}时间“{value}”早于前序环节{parent_table}时间“{earlier}”",
        "{table} at {value!r} precedes its earlier stage {parent_table} at {earlier!r}",
        "A later stage dated before the stage it follows (a result notice before its tender notice).",
    ),
    _r(
        "E-XR-DUPLICATE",
        R,
        "重复上传",
        "{table}主键“{value}”的相同内容已上传过",
        "{table} key {value!r} was already received with identical content",
        "The same business key with identical content sent again (重复上传).",
    ),
    _r(
        "E-XR-KEY-EXISTS",
        R,
        "新增记录已存在",
        "{table}主键“{value}”已存在，修改请使用 update",
        "{table} key {value!r} exists already; use update",
        "An insert of a business key that is already held.",
    ),
    _r(
        "E-XR-KEY-MISSING",
        R,
        "修改或删除的记录不存在",
        "{table}主键“{value}”不存在，无法{op}",
        "{table} key {value!r} does not exist; cannot {op}",
        "An update or delete of a key that is not held.",
    ),
    _r(
        "E-XR-DEAL-CODE-REUSED",
        R,
        "统一交易标识码已被另一交易使用",
        "{field}（{name_zh}）“{value}”已是{holder_zh}“{holder}”的统一交易标识码；一个统一交易标识码只能标识一个交易",
        "{field} {value!r} already identifies another transaction ({holder_zh} {holder!r})",
        "One code names one transaction (Art. 7): a section, lot or listing registered with a code another "
        "current registration holds (at the hub across batches, and within one file or batch). A tender "
        "project and its one section may share the code.",
    ),
    _r(
        "E-XR-DEAL-CODE-MISMATCH",
        R,
        "统一交易标识码与所属交易不一致",
        "{field}（{name_zh}）“{value}”{detail}",
        "{field} {value!r} is not the code of the transaction the record names: {detail}",
        "Every record of a transaction carries its code (Art. 7): a record naming its section or lot with "
        "another code than the one it was registered with; a code, or an item of a ';'-list of codes, that "
        "another tender or purchase project's transaction holds; a listed section whose registered code is "
        "missing from the record's list of codes.",
    ),
    # --- privacy: what must not leave the province (Art. 5) ---
    _r(
        "E-PRIV-SECRET",
        P,
        "涉密数据不得上传",
        "记录标记为涉密，不得上传",
        "the record is marked secret and must not be uploaded",
        "A record marked secret (涉密) reached validation.",
    ),
    _r(
        "E-PRIV-PERSONAL",
        P,
        "个人信息未脱敏",
        "{field}（{name_zh}）含未脱敏的个人信息（{detail}）",
        "{field} holds unmasked personal information ({detail})",
        "A personal field (ID number, phone, bank account) of a natural person or expert is not masked.",
    ),
    # --- exchange: what the hub checks about who sends what on which channel (Art. 7, 10) ---
    _r(
        "E-EXCH-CATEGORY-MISSING",
        E,
        "缺少数据类别标识",
        "记录缺少数据类别（realtime/history/test）",
        "the record has no category (realtime/history/test)",
        "Every uploaded record must be labelled with its category (Art. 10).",
    ),
    _r(
        "E-EXCH-CHANNEL",
        E,
        "数据类别与通道不符",
        "{value}数据不能通过第{channel}通道上传（第一通道只传实时数据，第二通道传历史和测试数据）",
        "{value} records may not be sent on channel {channel} (1: realtime only; 2: history and test)",
        "Channel 1 carries realtime records only; channel 2 carries history and test records.",
    ),
    _r(
        "E-EXCH-PROVINCE",
        E,
        "超出本省范围",
        "{field}（{name_zh}）“{value}”不属于本节点所在省份{province}",
        "{field} {value!r} is outside the node's province {province}",
        "A trading record whose region codes lie outside the province of the node that sent it.",
    ),
    _r(
        "E-EXCH-PLATFORM",
        E,
        "交易系统标识码未登记",
        "交易系统标识码“{value}”未登记在本节点名下",
        "PLATFORM_CODE {value!r} is not registered for this node",
        "The record names a 交易系统标识码 that is not registered to the sending node.",
    ),
    _r(
        "E-EXCH-OWNER",
        E,
        "无权修改他省记录",
        "{table}主键“{value}”由节点{owner}上传，本节点无权修改",
        "{table} key {value!r} belongs to node {owner}; this node may not change it",
        "Only the node that first uploaded a key may update or delete it.",
    ),
    _r(
        "E-EXCH-TIME",
        E,
        "交换时间格式错误",
        "{field}“{value}”不是带时区的ISO 8601时间",
        "{field} {value!r} is not an ISO 8601 time with an offset",
        "`acquired_at` or `sent_at` supplied by the node is not an ISO 8601 time with an offset.",
    ),
    _r(
        "E-EXCH-PUBLISHED-MISSING",
        E,
        "实时交易信息缺少发布时间",
        "{table}为实时交易信息，须给出本地发布时间（published_at{where}），否则无法计量“发布后10分钟内上传”",
        "{table} is realtime trade information and needs its local publication time (published_at{where}); "
        "without it the ten-minute rule cannot be measured",
        "A realtime trade record whose publication time cannot be determined (neither `published_at` nor "
        "its table's publication-time field): refused at the node's intake and at the hub (Art. 9).",
    ),
    _r(
        "E-EXCH-PUBLISHED-FUTURE",
        E,
        "发布时间晚于接收时间",
        "{field}发布时间“{value}”晚于接收方当前时间“{now}”超过{tolerance}秒，请检查源系统的时钟和时区",
        "{field} publication time {value!r} is more than {tolerance} s after the receiver's clock ({now})",
        "A publication time more than `clock_tolerance_seconds` ahead of the receiving clock (node intake "
        "or hub): it would make a late record look early (Art. 9).",
    ),
]
del S, F, X, R, P, E

RULES: dict[str, Rule] = {r.code: r for r in _ALL}


def rule(code: str) -> Rule:
    return RULES[code]
