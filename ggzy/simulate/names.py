"""Plausible Chinese names for simulated data: people, companies, projects and addresses.

Everything takes the caller's ``random.Random`` so a simulation stays reproducible; nothing here
reads the specification.
"""

from __future__ import annotations

import random

__all__ = [
    "CompanyKind",
    "address",
    "company_name",
    "district_name",
    "government_name",
    "person_name",
    "project_name",
    "short_place",
    "street",
]

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈"
    "姚卢傅钟姜崔谭廖范汪陆金石戴贾韦夏邱方侯邹熊孟秦白江阎薛尹段雷黎史龙陶贺顾毛郝龚邵万钱严赖覃洪武莫孔"
)
_GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉斌宇浩凯健俊帆帅旭宁龙林"
    "欣怡婷雪琳晨阳博文昊然子涵梓轩思远嘉怡雨萱志强建国海峰晓东春梅丽华立新永红建华卫东德明国庆"
)

_TRADE_WORDS = (
    "鑫盛", "宏达", "华安", "恒信", "建联", "中恒", "永泰", "海峡", "闽发", "顺昌", "嘉禾", "天成", "瑞丰", "金鼎", "汇通",
    "鸿运", "博远", "泰和", "信达", "兴业", "东升", "中联", "广厦", "荣盛", "立诚", "同创", "正元", "恒基", "宏图", "远航",
    "新港", "绿源", "力拓", "诚达", "弘毅", "长城", "华宇", "明辉", "安泰", "联合",
)  # fmt: skip


class CompanyKind:
    """What a company does, which picks the middle of its name."""

    CONSTRUCTION = "construction"
    AGENCY = "agency"
    SUPPLIER = "supplier"
    INVESTOR = "investor"
    MINING = "mining"
    CENTER = "center"


_BUSINESS = {
    CompanyKind.CONSTRUCTION: (
        "建设工程",
        "建筑工程",
        "市政工程",
        "路桥工程",
        "水利水电工程",
        "装饰工程",
        "建工集团",
    ),
    CompanyKind.AGENCY: ("招标代理", "工程咨询", "项目管理", "工程造价咨询", "建设监理"),
    CompanyKind.SUPPLIER: (
        "科技",
        "信息技术",
        "医疗器械",
        "办公设备",
        "贸易",
        "电子",
        "环保科技",
        "物业服务",
    ),
    CompanyKind.INVESTOR: ("投资", "实业", "资产管理", "置业", "城市建设投资"),
    CompanyKind.MINING: ("矿业", "石材", "建材", "资源开发"),
    CompanyKind.CENTER: ("公共资源交易中心",),
}
_SUFFIXES = ("有限公司", "有限公司", "有限责任公司", "股份有限公司", "集团有限公司")

_ROADS = (
    "人民", "解放", "中山", "建设", "五一", "八一", "工业", "湖滨", "江滨", "滨海", "温泉", "华林", "东街", "西环", "北环",
    "南湖", "金山", "鼓山", "新华", "长安", "和平", "光明", "迎宾", "学府", "科技",
)  # fmt: skip
_ROAD_KINDS = ("路", "大道", "街", "路", "巷")
_DISTRICTS = ("城关", "城东", "城西", "高新", "经开", "新区", "滨江", "湖东", "江北", "南山", "东湖", "临港")

_WORKS = (
    ("道路改造工程", "E"), ("市政排水管网工程", "E"), ("教学楼建设项目", "E"), ("保障性住房项目", "E"),
    ("河道综合整治工程", "N"), ("污水处理厂提标改造工程", "D"), ("医院综合楼建设项目", "E"),
    ("体育中心建设工程", "E"), ("农村公路提升工程", "E"), ("水库除险加固工程", "N"), ("公园景观提升工程", "N"),
    ("变电站配套工程", "D"), ("安置房建设项目", "E"), ("桥梁维修加固工程", "E"),
)  # fmt: skip
_GOODS = (
    "医疗设备采购项目", "教学设备采购项目", "办公家具采购项目", "信息化系统建设项目", "物业管理服务采购项目",
    "车辆采购项目", "食堂食材配送服务项目", "安防监控设备采购项目", "图书采购项目", "保洁服务采购项目",
)  # fmt: skip
_LAND = ("地块国有建设用地使用权", "宗地国有建设用地使用权", "片区商住用地使用权", "工业园区用地使用权")
_MINERALS = ("建筑用花岗岩矿", "建筑用砂岩矿", "石灰岩矿", "高岭土矿", "萤石矿", "钼矿", "铁矿", "稀土矿")
_ASSETS = ("办公楼实物资产", "闲置厂房及设备", "公务车辆", "商铺经营权", "仓储用房", "报废设备")
_EQUITY = ("股权", "国有股权", "国有产权")
_OTHER = (
    "林权流转",
    "排污权出让",
    "碳排放配额出售",
    "广告经营权出让",
    "公共停车位经营权出让",
    "农村集体资产租赁",
)
_GOVERNMENT = (
    "住房和城乡建设局", "交通运输局", "水利局", "教育局", "卫生健康委员会", "自然资源和规划局", "财政局",
    "发展和改革委员会", "公共资源交易管理委员会办公室",
)  # fmt: skip
_INSTITUTIONS = (
    "人民医院",
    "第一中学",
    "实验小学",
    "城市建设投资集团有限公司",
    "水务集团有限公司",
    "职业技术学院",
)


def person_name(rng: random.Random) -> str:
    """A two- or three-character name (surname and one or two given characters)."""
    given = rng.choice(_GIVEN) + (rng.choice(_GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(_SURNAMES) + given


def short_place(name: str) -> str:
    """``福建省`` → ``福建``, ``福州市`` → ``福州``, ``广西壮族自治区`` → ``广西`` (for use inside names)."""
    for suffix in (
        "维吾尔自治区",
        "壮族自治区",
        "回族自治区",
        "特别行政区",
        "自治区",
        "自治州",
        "地区",
        "省",
        "市",
        "盟",
    ):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def company_name(rng: random.Random, place: str, kind: str = CompanyKind.CONSTRUCTION) -> str:
    """E.g. ``福建省鑫盛建设工程有限公司``; ``place`` is a province or prefecture name."""
    business = rng.choice(_BUSINESS.get(kind, _BUSINESS[CompanyKind.SUPPLIER]))
    if kind == CompanyKind.CENTER:
        return f"{place}{business}"
    word = rng.choice(_TRADE_WORDS) + (rng.choice(_TRADE_WORDS) if rng.random() < 0.3 else "")
    return f"{place}{word}{business}{rng.choice(_SUFFIXES)}"


def government_name(rng: random.Random, place: str) -> str:
    """A public body of ``place``: a bureau, a hospital, a school or a city investment company."""
    if rng.random() < 0.6:
        return f"{place}{rng.choice(_GOVERNMENT)}"
    return f"{place}{rng.choice(_INSTITUTIONS)}"


def district_name(rng: random.Random) -> str:
    name = rng.choice(_DISTRICTS)
    return name if name.endswith("区") else name + "区"


def street(rng: random.Random) -> str:
    return f"{rng.choice(_ROADS)}{rng.choice(_ROAD_KINDS)}{rng.randint(1, 399)}号"


def address(rng: random.Random, province: str, prefecture: str) -> str:
    """A street address: ``福建省福州市城东区人民路128号``; municipalities are not repeated."""
    head = province if province == prefecture or prefecture.startswith(province) else province + prefecture
    return f"{head}{district_name(rng)}{street(rng)}"


def project_name(rng: random.Random, domain: str, place: str) -> tuple[str, str]:
    """A project name for a trading ``domain`` and the GB/T 4754 section letter it belongs to."""
    local = f"{place}{rng.choice(_DISTRICTS)}"
    if domain == "construction":
        work, section = rng.choice(_WORKS)
        return f"{local}{rng.choice(_ROADS)}{work}", section
    if domain == "procurement":
        return f"{place}{rng.choice(_INSTITUTIONS)}{rng.choice(_GOODS)}", "F"
    if domain == "land":
        return f"{local}{rng.randint(2020, 2029)}-{rng.randint(1, 99):02d}号{rng.choice(_LAND)}出让", "K"
    if domain == "mining":
        return f"{place}{rng.choice(_DISTRICTS)}{rng.choice(_MINERALS)}矿业权出让", "B"
    if domain == "property":
        if rng.random() < 0.5:
            return (
                f"{place}{rng.choice(_TRADE_WORDS)}投资有限公司{rng.randint(5, 100)}%{rng.choice(_EQUITY)}转让",
                "L",
            )
        return f"{place}{rng.choice(_INSTITUTIONS)}{rng.choice(_ASSETS)}转让", "L"
    return f"{local}{rng.choice(_OTHER)}项目", "L"
