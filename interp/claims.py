"""Verdicts computed from measured numbers by stated rules, printed beside the verdict.

A report must never say more than its numbers show. So a verdict is not a sentence an
analysis writes; it is a :class:`Claim`: a statement, the name of the rule that decides
it, and the :class:`Check` s (a measured number, a comparison and a threshold) the rule
applied. The claim holds when its checks pass (all of them, or any one with
``mode="any"``), and :meth:`Claim.markdown` prints the verdict with the rule and every
number it used, so a reader can redo the decision.

Example::

    from interp.claims import Check, Claim

    breaks = Claim("Ablating the neurons breaks the fact", rule="ablation breaks the fact",
                   checks=(Check("share still right after ablation", 0.98, "<=", 0.5, fmt=".0%"),))
    breaks.holds         # False
    breaks.markdown()    # '- **Ablating the neurons breaks the fact** — no. Rule “ablation breaks the fact” — ...'
"""

import math
from dataclasses import dataclass, field
from typing import Any

from interp.markup import literal

_OPS = {
    ">=": lambda v, t: v >= t,
    ">": lambda v, t: v > t,
    "<=": lambda v, t: v <= t,
    "<": lambda v, t: v < t,
}


def format_number(value: Any, fmt: str = ".3g") -> str:
    """One number as every sentence of a report quotes it (so a figure is quoted the same way twice)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return format(value, fmt)


@dataclass(frozen=True)
class Check:
    """One measured number compared with a threshold: ``value op threshold``.

    ``op`` is one of ``>= > <= <`` or ``"within"``: ``|value - threshold| <= tolerance``.
    ``fmt`` formats both numbers when printed. A NaN value never passes.
    """

    quantity: str
    value: float
    op: str
    threshold: float
    tolerance: float | None = None
    fmt: str = ".3g"

    def __post_init__(self) -> None:
        if self.op not in (*_OPS, "within"):
            raise ValueError(f"Check op must be one of {[*_OPS, 'within']}, got {self.op!r}")
        if (self.op == "within") != (self.tolerance is not None):
            raise ValueError("a 'within' check needs a tolerance, and only a 'within' check takes one")

    @property
    def passed(self) -> bool:
        value = float(self.value)
        if not math.isfinite(value):
            return False
        if self.op == "within":
            return abs(value - self.threshold) <= self.tolerance
        return bool(_OPS[self.op](value, self.threshold))

    def describe(self) -> str:
        f = lambda x: format_number(x, self.fmt)  # noqa: E731
        if self.op == "within":
            test = f"{self.quantity} {f(self.value)} within {f(self.tolerance)} of {f(self.threshold)}"
        else:
            test = f"{self.quantity} {f(self.value)} {self.op} {f(self.threshold)}"
        return f"{test} ({'passes' if self.passed else 'fails'})"


@dataclass(frozen=True)
class Claim:
    """A statement decided by a named rule over checks; see the module docstring.

    ``mode="all"``: every check must pass; ``mode="any"``: one is enough (e.g. a claim
    that holds "at either site"). ``where`` names, per check, what it is about (printed
    as "at the last token: ..."); leave it empty when the checks speak for themselves.
    """

    statement: str
    rule: str
    checks: tuple[Check, ...]
    mode: str = "all"
    groups: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.checks:
            raise ValueError(f"claim {self.statement!r} has no checks: a verdict needs numbers")
        if self.mode not in ("all", "any"):
            raise ValueError(f"mode must be 'all' or 'any', got {self.mode!r}")

    @property
    def holds(self) -> bool:
        passed = [c.passed for c in self.checks]
        return all(passed) if self.mode == "all" else any(passed)

    @property
    def verdict(self) -> str:
        return "yes" if self.holds else "no"

    def checks_text(self) -> str:
        joiner = "; and " if self.mode == "all" else "; or "
        return joiner.join(c.describe() for c in self.checks)

    def rule_text(self) -> str:
        return f"“{self.rule}” — {self.checks_text()}"

    def markdown(self, evidence: str = "") -> str:
        """A list item: the statement, the verdict, the rule with its numbers, then ``evidence`` prose."""
        evidence = evidence.strip()
        tail = f" {evidence[0].upper()}{evidence[1:]}" if evidence else ""
        return f"- **{literal(self.statement)}** — {self.verdict}. Rule {literal(self.rule_text())}.{tail}"

    def row(self) -> dict[str, Any]:
        """One row of a verdict table."""
        return {"claim": self.statement, "verdict": self.verdict, "rule": self.rule,
                "checks": self.checks_text()}


def any_group(statement: str, rule: str, groups: dict[str, tuple[Check, ...]]) -> "GroupClaim":
    """A claim that holds where every check of at least one named group passes (e.g. one group per site)."""
    return GroupClaim(statement, rule, tuple(c for g in groups.values() for c in g), "all", tuple(groups),
                      sizes=tuple(len(g) for g in groups.values()))


@dataclass(frozen=True)
class GroupClaim(Claim):
    """A :class:`Claim` over named groups of checks; it holds at the groups whose checks all pass."""

    sizes: tuple[int, ...] = ()

    def _split(self) -> list[tuple[str, tuple[Check, ...]]]:
        out, start = [], 0
        for name, size in zip(self.groups, self.sizes):
            out.append((name, self.checks[start:start + size]))
            start += size
        return out

    @property
    def passing(self) -> list[str]:
        return [name for name, checks in self._split() if all(c.passed for c in checks)]

    @property
    def holds(self) -> bool:
        return bool(self.passing)

    @property
    def verdict(self) -> str:
        return f"yes, at the {' and the '.join(self.passing)}" if self.passing else "no"

    def checks_text(self) -> str:
        return "; ".join(f"at the {name}: " + " and ".join(c.describe() for c in checks)
                         for name, checks in self._split())

    def rule_text(self) -> str:
        return f"“{self.rule}” (holds where every check of one group passes) — {self.checks_text()}"
