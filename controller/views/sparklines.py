"""The dashboard's resource lines: a history of CPU, memory or disk use as a sparkline,
coloured by the admission rule each value falls under, the current value and the agents it
allows (`63% → 2`), and the rules as a legend (`<50%→4 <80%→2 ≥80%→1`: under 50% used,
4 agents; ...).

Pure: values and rules in, a rich `Text` out.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from controller.model.spec import Threshold

SPARK = "▁▂▃▄▅▆▇█"
BAND_STYLES = ("green", "yellow", "dark_orange", "red")


def band(rules: Sequence[Threshold], value: float) -> int:
    """Index of the threshold rule `value` falls under (the one admission applies)."""
    for i, rule in enumerate(rules):
        if rule.below is None or value < rule.below:
            return i
    return len(rules) - 1


def band_style(rules: Sequence[Threshold], i: int) -> str:
    """Green for the most permissive rule, red for the strictest."""
    if len(rules) <= 1:
        return BAND_STYLES[0]
    scaled = round(i * (len(BAND_STYLES) - 1) / (len(rules) - 1))
    return BAND_STYLES[scaled]


def sparkline(values: Sequence[float], rules: Sequence[Threshold], width: int) -> Text:
    """The last `width` values (0-100) as block characters coloured by threshold band."""
    text = Text()
    shown = list(values)[-width:] if width > 0 else []
    text.append(" " * (width - len(shown)))
    for v in shown:
        level = min(len(SPARK) - 1, max(0, int(v / 100.0 * len(SPARK))))
        text.append(SPARK[level], style=band_style(rules, band(rules, v)))
    return text


def rule_label(rules: Sequence[Threshold], i: int) -> str:
    """`<50%→4` (under 50% used, 4 agents), the last `≥80%→1` (from 80% on), or `any→4` for a
    single rule without a threshold."""
    rule = rules[i]
    if rule.below is not None:
        return f"<{rule.below:g}%→{rule.parallel}"
    previous = rules[i - 1].below if i else None
    return f"≥{previous:g}%→{rule.parallel}" if previous is not None else f"any→{rule.parallel}"


def resource_line(
    name: str, values: Sequence[float], rules: Sequence[Threshold], limit: int | None, width: int
) -> Text:
    current = values[-1] if values else 0.0
    legend = Text()
    for i in range(len(rules)):
        legend.append(("" if i == 0 else " ") + rule_label(rules, i), style=band_style(rules, i))
    if not rules:
        legend.append("no rule", style="dim")
    shown_limit = "-" if limit is None else str(limit)
    tail = Text(f" {current:3.0f}% → {shown_limit}  ")
    tail.append_text(legend)
    spark_w = max(4, width - 5 - len(tail.plain))
    line = Text(f"{name:<4} ", style="bold")
    line.append_text(sparkline(values, rules, spark_w))
    line.append_text(tail)
    return line
