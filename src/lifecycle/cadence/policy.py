"""The cadence policy: the rules, their templates and the contact policy, checked as one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from lifecycle.cadence.contact import ContactPolicy
from lifecycle.cadence.rules import CadenceRule, StepSequence, default_rules, rule_from_dict
from lifecycle.cadence.templates import Template, default_templates
from lifecycle.errors import PolicyError
from lifecycle.vocabulary import Purpose

__all__ = ["CadencePolicy"]


def _to_rules(value: object) -> tuple[CadenceRule, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError("give a list of rules", key="cadence.rules")
    out = tuple(rule_from_dict(r) if isinstance(r, Mapping) else r for r in value)
    for r in out:
        if not isinstance(r, CadenceRule):
            raise PolicyError(
                f"{r!r} is not a rule: it needs id, template, purpose, channels, priority and "
                "occurrences(facts)",
                key="cadence.rules",
            )
    return out


def _to_templates(value: object) -> tuple[Template, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError("give a list of templates", key="cadence.templates")
    out = tuple(Template(**t) if isinstance(t, Mapping) else t for t in value)
    if not all(isinstance(t, Template) for t in out):
        raise PolicyError("each template must be a Template", key="cadence.templates")
    return out


def _name(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError("must be a non-empty string", key=f"cadence.{attr.name}")


def _lookback(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyError(
            f"must be a whole number >= 0, got {value!r}", key="cadence.lookback_days"
        )


@attrs.frozen(kw_only=True)
class CadencePolicy:
    """Follow-up rules, their templates (English and Chinese) and the contact policy.

    Loading checks that rule ids are unique, that every rule's template exists and serves the
    rule's purpose (so marketing rules use templates that carry an opt-out instruction), and
    that templates name only the allowed fields.

    Attributes:
        rules: the rules, built-in or the host's own (:class:`CadenceRule`).
        templates: the message templates.
        contact: quiet hours, caps and minimum gaps.
        shop_name, shop_name_zh: the shop's name for templates.
        lookback_days: how far back a plan reports follow-ups that expired unsent.
    """

    rules: tuple[CadenceRule, ...] = attrs.field(factory=default_rules, converter=_to_rules)
    templates: tuple[Template, ...] = attrs.field(
        factory=default_templates, converter=_to_templates
    )
    contact: ContactPolicy = attrs.field(factory=ContactPolicy)
    shop_name: str = attrs.field(default="our shop", validator=_name)
    shop_name_zh: str = attrs.field(default="本店", validator=_name)
    lookback_days: int = attrs.field(default=7, validator=_lookback)
    _by_id: dict[str, Template] = attrs.field(init=False, repr=False, eq=False)

    @contact.validator
    def _check_contact(self, attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, ContactPolicy):
            raise PolicyError("must be a ContactPolicy", key="cadence.contact")

    def __attrs_post_init__(self) -> None:
        by_id: dict[str, Template] = {}
        for t in self.templates:
            if t.id in by_id:
                raise PolicyError(f"duplicate template id {t.id!r}", key="cadence.templates")
            by_id[t.id] = t
        object.__setattr__(self, "_by_id", by_id)
        seen: set[str] = set()
        for r in self.rules:
            if r.id in seen:
                raise PolicyError(f"duplicate rule id {r.id!r}", key="cadence.rules")
            seen.add(r.id)
            names = [r.template]
            if isinstance(r, StepSequence):
                names += [s.template for s in r.steps]
            for name in names:
                found = by_id.get(name)
                if found is None:
                    raise PolicyError(f"no template {name!r}", key=f"cadence.rules.{r.id}.template")
                if found.purpose is not Purpose(r.purpose):
                    raise PolicyError(
                        f"template {name!r} is for {found.purpose.value} messages, the rule for "
                        f"{Purpose(r.purpose).value} ones",
                        key=f"cadence.rules.{r.id}.template",
                    )

    def template(self, template_id: str) -> Template:
        """The template called ``template_id``."""
        return self._by_id[template_id]

    def rule(self, rule_id: str) -> CadenceRule:
        """The rule called ``rule_id``."""
        found = self.rule_or_none(rule_id)
        if found is None:
            raise KeyError(rule_id)
        return found

    def rule_or_none(self, rule_id: str) -> CadenceRule | None:
        """The rule called ``rule_id``, or ``None`` when the policy has none by that name."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        return None
