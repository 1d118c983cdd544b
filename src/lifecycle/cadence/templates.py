"""Message templates in English and Chinese, and their safe rendering.

A template names flat fields of the customer, the order and the shop (``{customer_name}``,
``{order_id}``, ``{shop_name}``, ...) and nothing else: no attribute access, no indexing, no
format specs, no code. Anything else is refused when the policy loads.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, Final

import attrs

from lifecycle.errors import PolicyError
from lifecycle.vocabulary import Purpose

__all__ = ["OPT_OUT_MARKERS", "TEMPLATE_FIELDS", "Template", "default_templates", "render"]

#: The fields a template may name, and what each holds.
TEMPLATE_FIELDS: Final = {
    "customer_name": "the customer's name (a polite form of address when unknown)",
    "shop_name": "the shop's name",
    "order_id": "the order the message is about",
    "carrier": "the carrier of a shipped order",
    "tracking": "the tracking number of a shipped order",
    "occasion": "the holiday, festival or anniversary",
    "tier": "the loyalty tier",
    "points": "a number of points",
    "expiry_date": "the date points expire",
    "downgrade_date": "the day a loyalty tier ends unless the customer requalifies",
    "amount": "an amount of money (or orders) still needed",
    "item": "the product or category to replenish",
    "stage": "the relationship stage",
    "campaign": "the campaign's name",
    "owner": "the customer's owner (an owner task or an escalation)",
    "lead": "the owner's lead, who gets an escalation",
    "days": "a number of days (how late an escalated task is)",
}

#: Phrases that tell a customer how to opt out; a marketing template carries one in each language.
OPT_OUT_MARKERS: Final = frozenset({"Reply STOP", "unsubscribe", "回T退订", "退订"})

_FORMATTER = string.Formatter()


def _fields(text: str, key: str) -> tuple[str, ...]:
    """The field names ``text`` uses; raises :class:`PolicyError` for anything but plain names."""
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as e:
        raise PolicyError(f"not a valid template: {e}", key=key) from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS:
            raise PolicyError(
                f"unknown template field {{{name}}}; use one of {sorted(TEMPLATE_FIELDS)}",
                key=key,
            )
        if spec or conversion:
            raise PolicyError(f"field {{{name}}} takes no format spec or conversion", key=key)
        names.append(name)
    return tuple(names)


def _text(key: str) -> Any:
    def check(inst: Template, attr: attrs.Attribute[Any], value: object) -> None:
        where = f"cadence.templates.{getattr(inst, 'id', '?')}.{attr.name}"
        if not isinstance(value, str) or not value.strip():
            raise PolicyError("must be a non-empty string", key=where)
        _fields(value, where)

    return check


def _subject(key: str) -> Any:
    def check(inst: Template, attr: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            return
        where = f"cadence.templates.{getattr(inst, 'id', '?')}.{attr.name}"
        if not isinstance(value, str) or not value.strip() or "\n" in value or "\r" in value:
            raise PolicyError("must be a non-empty string on one line", key=where)
        _fields(value, where)

    return check


def _purpose(value: object) -> Purpose:
    try:
        return Purpose(value)  # type: ignore[arg-type]  # a bad value raises ValueError
    except ValueError:
        raise PolicyError(
            f"unknown purpose {value!r}; use one of {[p.value for p in Purpose]}",
            key="cadence.templates.purpose",
        ) from None


def _template_id(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError("must be a non-empty string", key="cadence.templates.id")


@attrs.frozen(kw_only=True)
class Template:
    """One message in English (``en``) and Chinese (``zh``).

    A marketing template must tell the customer how to opt out in both languages (one of
    :data:`OPT_OUT_MARKERS`, e.g. "Reply STOP to opt out" / "回T退订"). ``subject_en`` and
    ``subject_zh`` are the e-mail subject lines (the shop's name when left out).
    """

    id: str = attrs.field(validator=_template_id)
    en: str = attrs.field(validator=_text("en"))
    zh: str = attrs.field(validator=_text("zh"))
    purpose: Purpose = attrs.field(default=Purpose.SERVICE, converter=_purpose)
    subject_en: str | None = attrs.field(default=None, validator=_subject("subject_en"))
    subject_zh: str | None = attrs.field(default=None, validator=_subject("subject_zh"))

    def __attrs_post_init__(self) -> None:
        if self.purpose is Purpose.MARKETING:
            for lang in ("en", "zh"):
                text = getattr(self, lang)
                if not any(m in text for m in OPT_OUT_MARKERS):
                    raise PolicyError(
                        "a marketing template must tell how to opt out, e.g. "
                        "'Reply STOP to opt out' / '回T退订'",
                        key=f"cadence.templates.{self.id}.{lang}",
                    )

    def render(self, values: Mapping[str, str], lang: str = "en") -> str:
        """The text in ``lang`` with the fields filled from ``values``."""
        return render(self.zh if lang == "zh" else self.en, values)

    def render_subject(self, values: Mapping[str, str], lang: str = "en") -> str:
        """The subject line in ``lang`` with the fields filled from ``values``."""
        subject = (self.subject_zh if lang == "zh" else self.subject_en) or "{shop_name}"
        return render(subject, values)


def render(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``{field}`` replaced by ``values[field]`` (empty when absent).

    Only plain names are substituted; the values are never formatted or evaluated.
    """
    out = []
    for literal, name, _, _ in _FORMATTER.parse(text):
        out.append(literal)
        if name is not None:
            out.append(values.get(name, ""))
    return "".join(out)


_STOP_EN: Final = " Reply STOP to opt out."
_STOP_ZH: Final = " 回T退订"

# id: (purpose, en, zh)
_DEFAULTS: Final[dict[str, tuple[Purpose, str, str]]] = {
    "payment_reminder": (
        Purpose.TRANSACTIONAL,
        "Hi {customer_name}, your order {order_id} at {shop_name} is waiting for payment. "
        "Pay soon to keep your items.",
        "{customer_name}您好，您在{shop_name}的订单{order_id}尚未付款，请尽快完成支付以免商品被释放。",
    ),
    "shipping_notice": (
        Purpose.TRANSACTIONAL,
        "Hi {customer_name}, your order {order_id} has shipped with {carrier}, "
        "tracking number {tracking}.",
        "{customer_name}您好，您的订单{order_id}已发货，承运商{carrier}，运单号{tracking}。",
    ),
    "care_message": (
        Purpose.SERVICE,
        "Hi {customer_name}, how are you getting on with order {order_id}? "
        "Reply here if anything is not right.",
        "{customer_name}您好，订单{order_id}的商品用得还好吗？如有任何问题请直接回复我们。",
    ),
    "review_request": (
        Purpose.SERVICE,
        "Hi {customer_name}, would you rate order {order_id}? Your review helps other shoppers.",
        "{customer_name}您好，能否为订单{order_id}写个评价？您的评价对其他顾客很有帮助。",
    ),
    "complaint_answer": (
        Purpose.SERVICE,
        "Answer the complaint of {customer_name} within 24 hours.",
        "请在24小时内回复{customer_name}的投诉。",
    ),
    "satisfaction_check": (
        Purpose.SERVICE,
        "Hi {customer_name}, we resolved your issue last week. Are you satisfied with how "
        "{shop_name} handled it?",
        "{customer_name}您好，您上周反馈的问题已处理，请问您对{shop_name}的处理结果满意吗？",
    ),
    "referral_thanks": (
        Purpose.SERVICE,
        "Thank you, {customer_name}: a friend you introduced just placed their first order "
        "at {shop_name}.",
        "感谢{customer_name}！您推荐的朋友已在{shop_name}完成首单。",
    ),
    "delivery_delayed": (
        Purpose.SERVICE,
        "Hi {customer_name}, order {order_id} is taking longer than expected. We are on it "
        "with {carrier} and will keep you posted.",
        "{customer_name}您好，订单{order_id}的配送比预期慢，我们正在与{carrier}跟进，会及时告知进展。",
    ),
    "delivery_delayed_task": (
        Purpose.SERVICE,
        "Order {order_id} of {customer_name} is overdue: check with {carrier} ({tracking}).",
        "{customer_name}的订单{order_id}已超期未送达，请联系{carrier}核查（{tracking}）。",
    ),
    "birthday": (
        Purpose.MARKETING,
        "Happy birthday, {customer_name}! A small gift from {shop_name} is waiting for you."
        + _STOP_EN,
        "{customer_name}，生日快乐！{shop_name}为您准备了一份生日礼物。" + _STOP_ZH,
    ),
    "first_order_anniversary": (
        Purpose.MARKETING,
        "{customer_name}, it is a year since your first order at {shop_name}. Thank you!"
        + _STOP_EN,
        "{customer_name}，您在{shop_name}的首单已满一周年，感谢一路相伴！" + _STOP_ZH,
    ),
    "holiday_greeting": (
        Purpose.MARKETING,
        "{shop_name} wishes you a happy {occasion}, {customer_name}!" + _STOP_EN,
        "{shop_name}祝{customer_name}{occasion}快乐！" + _STOP_ZH,
    ),
    "festival_sale": (
        Purpose.MARKETING,
        "{customer_name}, the {occasion} sale at {shop_name} starts soon: your offers are ready."
        + _STOP_EN,
        "{customer_name}，{shop_name}{occasion}活动即将开始，您的专属优惠已备好。" + _STOP_ZH,
    ),
    "welcome_repeat": (
        Purpose.MARKETING,
        "Thank you for coming back, {customer_name}! A repeat-customer perk from {shop_name} "
        "is in your account." + _STOP_EN,
        "感谢{customer_name}再次光临！{shop_name}的回头客专属福利已发放到您的账户。" + _STOP_ZH,
    ),
    "welcome_long_term": (
        Purpose.MARKETING,
        "{customer_name}, you are one of {shop_name}'s long-standing customers. Thank you!"
        + _STOP_EN,
        "{customer_name}，您已是{shop_name}的老朋友了，感谢您的长期支持！" + _STOP_ZH,
    ),
    "referral_invite": (
        Purpose.MARKETING,
        "{customer_name}, love {shop_name}? Invite a friend and you both get a reward." + _STOP_EN,
        "{customer_name}，喜欢{shop_name}吗？邀请好友下单，双方都有奖励。" + _STOP_ZH,
    ),
    "tier_upgrade": (
        Purpose.SERVICE,
        "Congratulations, {customer_name}: you are now a {tier} member of {shop_name}.",
        "恭喜{customer_name}升级为{shop_name}{tier}！",
    ),
    "tier_downgrade_warning": (
        Purpose.SERVICE,
        "{customer_name}, your {tier} membership at {shop_name} ends on {downgrade_date} "
        "unless {amount} more is spent by then.",
        "{customer_name}，您在{shop_name}的{tier}资格将于{downgrade_date}到期，"
        "届时前再消费{amount}即可保级。",
    ),
    "points_expiring": (
        Purpose.SERVICE,
        "{customer_name}, {points} of your points expire on {expiry_date}. Use them before then.",
        "{customer_name}，您有{points}积分将于{expiry_date}过期，请及时使用。",
    ),
    "owner_follow_up": (
        Purpose.SERVICE,
        "Follow up with {customer_name} ({stage}).",
        "跟进客户{customer_name}（{stage}）。",
    ),
    "owner_escalation": (
        Purpose.SERVICE,
        "{lead}: {owner} has not followed up with {customer_name} for {days} days.",
        "{lead}：{owner} 已 {days} 天未跟进客户{customer_name}。",
    ),
    "replenish": (
        Purpose.MARKETING,
        "{customer_name}, your {item} may be running low. Reorder in one tap at {shop_name}."
        + _STOP_EN,
        "{customer_name}，您的{item}可能快用完了，在{shop_name}一键回购。" + _STOP_ZH,
    ),
    "win_back": (
        Purpose.MARKETING,
        "We miss you, {customer_name}! Here is a coupon for your next order at {shop_name}."
        + _STOP_EN,
        "{customer_name}，好久不见！{shop_name}送您一张下单优惠券。" + _STOP_ZH,
    ),
    "win_back_final": (
        Purpose.MARKETING,
        "{customer_name}, our best offer yet is waiting at {shop_name}, for one week only."
        + _STOP_EN,
        "{customer_name}，{shop_name}为您准备了专属大额优惠，仅限一周。" + _STOP_ZH,
    ),
    "campaign": (
        Purpose.MARKETING,
        "{customer_name}, {campaign} at {shop_name}: see what is in store for you." + _STOP_EN,
        "{customer_name}，{shop_name}{campaign}进行中，快来看看吧。" + _STOP_ZH,
    ),
}


# id: (subject en, subject zh)
_SUBJECTS: Final[dict[str, tuple[str, str]]] = {
    "payment_reminder": ("Order {order_id} is waiting for payment", "订单{order_id}待付款"),
    "shipping_notice": ("Order {order_id} has shipped", "订单{order_id}已发货"),
    "care_message": ("How is order {order_id}?", "订单{order_id}使用如何？"),
    "review_request": ("Rate your order {order_id}", "请评价订单{order_id}"),
    "complaint_answer": ("Complaint to answer: {customer_name}", "待回复投诉：{customer_name}"),
    "satisfaction_check": ("Were we of help?", "问题处理满意吗？"),
    "referral_thanks": ("Thank you for introducing a friend", "感谢您的推荐"),
    "win_back": ("We miss you at {shop_name}", "{shop_name}想念您"),
    "win_back_final": ("Our best offer, this week only", "专属优惠，仅限一周"),
    "campaign": ("{campaign} at {shop_name}", "{shop_name}{campaign}"),
    "delivery_delayed": ("Order {order_id} is running late", "订单{order_id}配送延迟"),
    "delivery_delayed_task": ("Late delivery: order {order_id}", "配送延迟：订单{order_id}"),
    "birthday": ("Happy birthday, {customer_name}", "{customer_name}，生日快乐"),
    "first_order_anniversary": ("A year with {shop_name}", "与{shop_name}相伴一周年"),
    "holiday_greeting": ("{occasion} greetings from {shop_name}", "{shop_name}祝您{occasion}快乐"),
    "festival_sale": ("{occasion} at {shop_name}", "{shop_name}{occasion}"),
    "welcome_repeat": ("Welcome back to {shop_name}", "欢迎回到{shop_name}"),
    "welcome_long_term": ("Thank you for staying with {shop_name}", "感谢您长期支持{shop_name}"),
    "referral_invite": ("Invite a friend to {shop_name}", "邀请好友来{shop_name}"),
    "tier_upgrade": ("You are now {tier}", "您已升级为{tier}"),
    "tier_downgrade_warning": ("Keep your {tier} status", "保持您的{tier}等级"),
    "points_expiring": (
        "{points} points expire on {expiry_date}",
        "{points}积分将于{expiry_date}过期",
    ),
    "owner_follow_up": ("Follow up with {customer_name}", "跟进客户{customer_name}"),
    "owner_escalation": ("Escalated: {customer_name}", "升级提醒：{customer_name}"),
    "replenish": ("Time to restock {item}?", "{item}该补货了吗？"),
}


def default_templates() -> tuple[Template, ...]:
    """The templates of the default rules, in English and Chinese."""
    out = []
    for k, (purpose, en, zh) in _DEFAULTS.items():
        subject_en, subject_zh = _SUBJECTS.get(k, (None, None))
        out.append(
            Template(
                id=k,
                purpose=purpose,
                en=en,
                zh=zh,
                subject_en=subject_en,
                subject_zh=subject_zh,
            )
        )
    return tuple(out)
