"""Demo data: a bureau, institutes holding the 1,000 real CSL research records,
enterprises with demands, a broker agency, and an account for every role.

Loaded on the first `market serve` of an empty database (MARKET_LOAD_DEMO_DATA) or
with `market demo load`. Everything invented is marked 演示; the research records are
real (see market/data/README.md for their source and licence).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from market.auth.models import Role, User
from market.auth.organization import Organization, OrganizationKind, VerificationStatus
from market.auth.passwords import hash_password
from market.common.codes import join_codes
from market.db import session_scope, utcnow
from market.listings.models import (
    CooperationMode,
    Demand,
    IpForm,
    ListingStatus,
    MaturityStage,
    Result,
    TechField,
    TransferMode,
)
from market.organizations.uscc import make_uscc
from market.outbox import service as outbox

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed for newcomers, demo only
CSL_SOURCE = "CSL (ydli-ai/CSL, Apache-2.0), real record from a Chinese core journal"

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class DemoOrganization:
    key: str
    name: str
    kind: OrganizationKind
    district: str
    verified: bool = True


ORGANIZATIONS = (
    DemoOrganization("bureau", "宁波市科学技术局（演示）", OrganizationKind.BUREAU, "330212"),
    DemoOrganization(
        "materials", "甬江材料与化工研究院（演示）", OrganizationKind.INSTITUTE, "330211"
    ),
    DemoOrganization(
        "engineering", "宁波东海工程技术研究院（演示）", OrganizationKind.INSTITUTE, "3302GX"
    ),
    DemoOrganization("life", "四明生命健康研究所（演示）", OrganizationKind.INSTITUTE, "330203"),
    DemoOrganization("university", "甬城理工大学（演示）", OrganizationKind.UNIVERSITY, "330212"),
    DemoOrganization(
        "magnet", "宁波北仑永磁电机有限公司（演示）", OrganizationKind.ENTERPRISE, "330206"
    ),
    DemoOrganization(
        "textile", "慈溪智造纺织服装有限公司（演示）", OrganizationKind.ENTERPRISE, "330282"
    ),
    DemoOrganization("food", "象山海洋食品有限公司（演示）", OrganizationKind.ENTERPRISE, "330225"),
    DemoOrganization(
        "petro", "镇海绿色石化科技有限公司（演示）", OrganizationKind.ENTERPRISE, "330211"
    ),
    DemoOrganization(
        "broker", "宁波科创技术转移服务中心（演示）", OrganizationKind.BROKER_AGENCY, "330212"
    ),
    DemoOrganization(
        "newcomer",
        "余姚新来智能装备有限公司（演示）",
        OrganizationKind.ENTERPRISE,
        "330281",
        verified=False,
    ),
)

# email prefix, display name, organisation key, role
ACCOUNTS = (
    ("admin", "平台管理员", "bureau", Role.ADMIN),
    ("reviewer", "审核员 陈", "bureau", Role.BUREAU_STAFF),
    ("materials", "材料院 张老师", "materials", Role.ORG_ADMIN),
    ("engineering", "工程院 李老师", "engineering", Role.ORG_ADMIN),
    ("life", "生命所 王老师", "life", Role.ORG_ADMIN),
    ("university", "理工大学 赵老师", "university", Role.ORG_ADMIN),
    ("university-member", "理工大学 孙博士", "university", Role.MEMBER),
    ("magnet", "永磁电机 周总", "magnet", Role.ORG_ADMIN),
    ("magnet-engineer", "永磁电机 吴工", "magnet", Role.MEMBER),
    ("textile", "智造纺织 郑总", "textile", Role.ORG_ADMIN),
    ("food", "海洋食品 冯总", "food", Role.ORG_ADMIN),
    ("petro", "绿色石化 何总", "petro", Role.ORG_ADMIN),
    ("broker-admin", "科创中心 主任", "broker", Role.ORG_ADMIN),
    ("broker", "技术经纪人 钱经理", "broker", Role.BROKER),
    ("newcomer", "新来智能 韩总", "newcomer", Role.ORG_ADMIN),
)

# The CSL discipline of each record decides its demo institute and technical field.
FIELD_BY_DISCIPLINE_KEYWORD = (
    ("材料", TechField.NEW_MATERIALS),
    ("冶金", TechField.NEW_MATERIALS),
    ("化学", TechField.GREEN_PETROCHEMICAL),
    ("石油", TechField.GREEN_PETROCHEMICAL),
    ("纺织", TechField.FASHION),
    ("艺术", TechField.FASHION),
    ("医", TechField.HEALTH),
    ("药", TechField.HEALTH),
    ("生物", TechField.HEALTH),
    ("体育", TechField.HEALTH),
    ("心理", TechField.HEALTH),
    ("食品", TechField.HEALTH),
    ("水产", TechField.MARINE),
    ("海洋", TechField.MARINE),
    ("船舶", TechField.MARINE),
    ("交通", TechField.LOGISTICS),
    ("测绘", TechField.LOGISTICS),
    ("地理", TechField.LOGISTICS),
    ("园艺", TechField.AGRICULTURE),
    ("作物", TechField.AGRICULTURE),
    ("农", TechField.AGRICULTURE),
    ("林", TechField.AGRICULTURE),
    ("畜牧", TechField.AGRICULTURE),
    ("植物", TechField.AGRICULTURE),
    ("环境", TechField.ENERGY_SAVING),
    ("动力", TechField.ENERGY_SAVING),
    ("水利", TechField.ENERGY_SAVING),
    ("大气", TechField.ENERGY_SAVING),
    ("核", TechField.ENERGY_SAVING),
    ("地质", TechField.ENERGY_SAVING),
    ("矿业", TechField.ENERGY_SAVING),
    ("机械", TechField.HIGH_END_EQUIPMENT),
    ("兵器", TechField.HIGH_END_EQUIPMENT),
    ("航空", TechField.HIGH_END_EQUIPMENT),
    ("力学", TechField.HIGH_END_EQUIPMENT),
    ("土木", TechField.HIGH_END_EQUIPMENT),
    ("建筑", TechField.HIGH_END_EQUIPMENT),
    ("光学", TechField.HIGH_END_EQUIPMENT),
    ("电气", TechField.HIGH_END_EQUIPMENT),
)
INSTITUTE_BY_FIELD = {
    TechField.NEW_MATERIALS: "materials",
    TechField.GREEN_PETROCHEMICAL: "materials",
    TechField.FASHION: "materials",
    TechField.HEALTH: "life",
    TechField.AGRICULTURE: "life",
    TechField.MARINE: "life",
    TechField.HIGH_END_EQUIPMENT: "engineering",
    TechField.ENERGY_SAVING: "engineering",
    TechField.LOGISTICS: "engineering",
}

# (enterprise, field, title, description, indicators, keywords, budget in 万元 or None for 面议)
DEMANDS: tuple[
    tuple[str, TechField, str, str, str, tuple[str, ...], tuple[int, int] | None], ...
] = (
    (
        "magnet",
        TechField.NEW_MATERIALS,
        "寻求高矫顽力钕铁硼永磁材料晶界扩散技术",
        "我司生产新能源汽车驱动电机用烧结钕铁硼磁体，重稀土镝、铽用量高、成本压力大，"
        "希望引进晶界扩散工艺，在降低重稀土用量的同时保持高温矫顽力。",
        "矫顽力≥25kOe（20℃），重稀土用量降低30%以上，批量一致性好",
        ("钕铁硼", "晶界扩散", "永磁材料", "矫顽力"),
        (200, 500),
    ),
    (
        "magnet",
        TechField.HIGH_END_EQUIPMENT,
        "永磁同步电机无位置传感器控制算法合作开发",
        "面向空调压缩机和水泵的永磁同步电机，需要低速大转矩下稳定的无位置传感器控制方案。",
        "零速起动转矩≥150%额定，转速波动≤1%",
        ("永磁同步电机", "无位置传感器", "矢量控制"),
        (80, 150),
    ),
    (
        "magnet",
        TechField.SMART_ECONOMY,
        "电机生产线视觉缺陷检测系统",
        "定子绕线和转子装配工序依靠人工目检，漏检率高，希望建设基于机器视觉的在线检测系统。",
        "检出率≥99.5%，节拍≤2秒/件",
        ("机器视觉", "缺陷检测", "深度学习"),
        (50, 120),
    ),
    (
        "textile",
        TechField.FASHION,
        "征集功能性纺织面料抗菌整理技术",
        "针织运动面料需要耐水洗的抗菌功能，现有银离子整理成本高且易变色。",
        "洗涤50次后抑菌率≥90%，不变色",
        ("抗菌整理", "功能性纺织品", "针织面料"),
        (30, 80),
    ),
    (
        "textile",
        TechField.SMART_ECONOMY,
        "服装柔性生产排程与智能裁剪优化",
        "多品种小批量订单导致排产频繁变动，希望引入智能排程与排料算法提升面料利用率。",
        "面料利用率提升3个百分点以上",
        ("智能排程", "排料优化", "柔性制造"),
        None,
    ),
    (
        "textile",
        TechField.ENERGY_SAVING,
        "印染废水深度处理与回用技术需求",
        "印染车间废水色度高、COD波动大，需要经济可行的深度处理与中水回用工艺。",
        "出水COD≤50mg/L，回用率≥60%",
        ("印染废水", "深度处理", "中水回用"),
        (150, 400),
    ),
    (
        "food",
        TechField.MARINE,
        "寻求海水鱼类保鲜与冷链品质控制技术",
        "带鱼、大黄鱼等海产品在流通过程中易腐败，需要延长货架期的保鲜技术。",
        "冷藏货架期延长5天以上，感官品质良好",
        ("水产品保鲜", "冷链物流", "货架期"),
        (40, 100),
    ),
    (
        "food",
        TechField.HEALTH,
        "海洋生物活性肽制备工艺开发",
        "利用鱼皮、鱼骨等加工副产物制备胶原蛋白肽，需要酶解和纯化工艺。",
        "得率≥15%，分子量≤3000Da占比≥85%",
        ("胶原蛋白肽", "酶解", "副产物综合利用"),
        (60, 150),
    ),
    (
        "food",
        TechField.AGRICULTURE,
        "设施蔬菜病虫害绿色防控技术",
        "公司自有蔬菜基地病虫害多发，需要减少化学农药使用的绿色防控方案。",
        "化学农药用量减少40%",
        ("绿色防控", "病虫害", "设施蔬菜"),
        None,
    ),
    (
        "petro",
        TechField.GREEN_PETROCHEMICAL,
        "炼化装置催化剂再生与节能降耗技术",
        "催化裂化装置能耗偏高，需要催化剂再生工艺优化和余热利用方案。",
        "综合能耗降低5%",
        ("催化裂化", "催化剂再生", "余热利用"),
        (300, 800),
    ),
    (
        "petro",
        TechField.ENERGY_SAVING,
        "挥发性有机物(VOCs)治理技术征集",
        "储罐区和装卸环节VOCs排放需达到新排放标准，征集吸附回收或催化燃烧技术。",
        "非甲烷总烃排放浓度≤60mg/m³",
        ("VOCs治理", "催化燃烧", "吸附回收"),
        (100, 300),
    ),
    (
        "petro",
        TechField.NEW_MATERIALS,
        "高性能聚烯烃改性材料合作开发",
        "希望开发用于汽车零部件的高刚高韧聚丙烯改性材料。",
        "弯曲模量≥2000MPa，缺口冲击强度≥40kJ/m²",
        ("聚丙烯", "改性材料", "汽车轻量化"),
        (120, 260),
    ),
)


def is_loaded(session: Session) -> bool:
    return session.exec(select(func.count()).select_from(Organization)).one() > 0


def load(engine: Engine, progress: ProgressCallback | None = None) -> dict[str, int]:
    """Load everything in one transaction; returns counts per kind of record."""
    with session_scope(engine) as session:
        if is_loaded(session):
            return {}
        organizations = _create_organizations(session)
        users = _create_accounts(session, organizations)
        results = _create_results(session, organizations, users, progress)
        demands = _create_demands(session, organizations, users)
    return {
        "organizations": len(organizations),
        "accounts": len(users),
        "results": results,
        "demands": demands,
    }


def research_records() -> list[dict[str, Any]]:
    data = resources.files("market.data").joinpath("csl_research_results.json")
    records: list[dict[str, Any]] = json.loads(data.read_text(encoding="utf-8"))
    return records


def field_for_discipline(discipline: str) -> TechField:
    for keyword, field in FIELD_BY_DISCIPLINE_KEYWORD:
        if keyword in discipline:
            return field
    # Computing, electronics, economics, law, humanities: the digital-economy field.
    return TechField.SMART_ECONOMY


def _create_organizations(session: Session) -> dict[str, Organization]:
    created = {}
    for number, spec in enumerate(ORGANIZATIONS, start=1):
        authority = (
            "12" if spec.kind in (OrganizationKind.BUREAU, OrganizationKind.INSTITUTE) else "91"
        )
        organization = Organization(
            name=spec.name,
            kind=spec.kind,
            district_code=spec.district,
            credit_code=make_uscc(authority, "330200", f"MD{number:06d}"),
            contact_name="演示联系人",
            contact_phone="0574-8800" + f"{number:04d}",
            verification_status=VerificationStatus.VERIFIED
            if spec.verified
            else VerificationStatus.PENDING,
            verified_at=utcnow() if spec.verified else None,
        )
        session.add(organization)
        created[spec.key] = organization
    session.flush()
    return created


def _create_accounts(session: Session, organizations: dict[str, Organization]) -> dict[str, User]:
    password_hash = hash_password(DEMO_PASSWORD)
    users = {}
    for prefix, display_name, organization_key, role in ACCOUNTS:
        organization_id = organizations[organization_key].id
        assert organization_id is not None
        user = User(
            email=f"{prefix}@demo.techmarket.cn",
            display_name=display_name,
            password_hash=password_hash,
            role=role,
            organization_id=organization_id,
        )
        session.add(user)
        users[prefix] = user
    session.flush()
    return users


def _create_results(
    session: Session,
    organizations: dict[str, Organization],
    users: dict[str, User],
    progress: ProgressCallback | None,
) -> int:
    today = date.today()
    count = 0
    for index, record in enumerate(research_records()):
        field = field_for_discipline(record["discipline"])
        owner_key = INSTITUTE_BY_FIELD.get(field, "university")
        owner = organizations[owner_key]
        author = users[owner_key]
        assert owner.id is not None and author.id is not None
        result = Result(
            organization_id=owner.id,
            created_by_user_id=author.id,
            title=record["title"][:200],
            summary=record["abstract"][:5000],
            keywords=_demo_keywords(record["keywords"]),
            field=field,
            district_code=owner.district_code,
            ip_form=IpForm.OTHER,
            maturity_stage=_maturity(index),
            transfer_modes=join_codes(_transfer_modes(index)),
            price_fen=_price_fen(index),
            price_negotiable=_price_fen(index) is None,
            discipline=record["discipline"],
            source=CSL_SOURCE,
            status=ListingStatus.PUBLISHED,
            published_at=utcnow(),
            submitted_at=utcnow(),
            valid_from=today,
            valid_until=today + timedelta(days=730),
        )
        session.add(result)
        count += 1
        if count % 200 == 0:
            _publish_batch(session, "result")
            if progress:
                progress(200)
    _publish_batch(session, "result")
    if progress and count % 200:
        progress(count % 200)
    return count


def _create_demands(
    session: Session, organizations: dict[str, Organization], users: dict[str, User]
) -> int:
    today = date.today()
    for enterprise, field, title, description, indicators, keywords, budget in DEMANDS:
        owner = organizations[enterprise]
        author = users[enterprise]
        assert owner.id is not None and author.id is not None
        session.add(
            Demand(
                organization_id=owner.id,
                created_by_user_id=author.id,
                title=title,
                description=description,
                technical_indicators=indicators,
                keywords=list(keywords),
                field=field,
                district_code=owner.district_code,
                cooperation_modes=join_codes(
                    [CooperationMode.JOINT_DEVELOPMENT, CooperationMode.COMMISSIONED_DEVELOPMENT]
                ),
                budget_min_fen=budget[0] * 1_000_000 if budget else None,  # 万元 → fen
                budget_max_fen=budget[1] * 1_000_000 if budget else None,
                budget_negotiable=budget is None,
                status=ListingStatus.PUBLISHED,
                published_at=utcnow(),
                submitted_at=utcnow(),
                valid_from=today,
                valid_until=today + timedelta(days=365),
            )
        )
    _publish_batch(session, "demand")
    return len(DEMANDS)


def _publish_batch(session: Session, kind: str) -> None:
    """Flush new listings and queue them for search indexing, as publication does."""
    new_rows = [row for row in session.new if isinstance(row, Result | Demand)]
    session.flush()
    for row in new_rows:
        assert row.id is not None
        outbox.enqueue(session, "listing.changed", kind, row.id)


def _demo_keywords(keywords: list[str]) -> list[str]:
    return list(dict.fromkeys(k.strip() for k in keywords if 0 < len(k.strip()) <= 30))[:10]


def _maturity(index: int) -> MaturityStage:
    return list(MaturityStage)[index % len(MaturityStage)]


def _transfer_modes(index: int) -> list[TransferMode]:
    modes = list(TransferMode)
    return [modes[index % len(modes)], modes[(index + 2) % len(modes)]]


def _price_fen(index: int) -> int | None:
    """Two in five are 面议; the rest ask 5-200 万元 (deterministic, for repeatable demos)."""
    if index % 5 in (0, 3):
        return None
    return (5 + (index * 37) % 196) * 1_000_000
