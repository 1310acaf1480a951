"""Schedule actions and checker witnesses as short lines a reader can take in.

`d11 hunt` prints a minimal schedule next to what broke; raw JSON cut at a
fixed width left a witness ending mid-string. Here each action becomes one
line ("partition shard-1,shard-2 | gw,shard-3", "clock of shard-2 +50 ms,
drift 100 ppm") and a witness becomes a few lines, one per violation, cut at
whole items with a count of what was left out.
"""

from __future__ import annotations

from typing import Any

from checks.nemesis import Action

__all__ = ["describe_action", "describe_witness"]

NAMES_SHOWN = 6  # node names listed in one group before "+N more"
WITNESS_ITEMS_SHOWN = 3
LINE_CHARS_MAX = 100


def describe_action(action: Action) -> str:
    """What one schedule action does, in words."""
    p, op = action.params, action.op
    if op in ("crash", "restart", "pause", "resume"):
        return f"{op} {p.get('node')}"
    if op == "skew":
        skew_ms, drift_ppm = _num(p.get("skew_ms")), _num(p.get("drift_ppm"))
        if not skew_ms and not drift_ppm:
            return f"reset the clock of {p.get('node')}"
        return f"clock of {p.get('node')} {skew_ms:+g} ms, drift {drift_ppm:g} ppm"
    if op == "isolate":
        return f"isolate {p.get('target')}"
    if op == "partition":
        groups = " | ".join(_names(g) for g in p.get("groups") or [])
        return f"partition {groups}" + (" (one way)" if p.get("one_way") else "")
    if op == "cut":
        links = p.get("links") or []
        bridge = f", {p['bridge']} bridges them" if p.get("bridge") else ""
        return f"cut {len(links)} links{bridge}"
    if op == "heal":
        return "heal every link"
    if op == "net":
        kinds = ("loss", "duplicate", "reorder")
        shown = [f"{k} {_num(p.get(k)):.0%}" for k in kinds if _num(p.get(k))]
        return "messages: " + (", ".join(shown) if shown else "no loss, duplication or reordering")
    return op


def describe_witness(witness: Any, said: str = "") -> list[str]:
    """A checker's witness as a few readable lines: one per violation, the first ones.

    A message already in `said` (the verdict's summary) is not repeated.
    """
    if witness is None or witness == [] or witness == {}:
        return []
    items = witness if isinstance(witness, list) else [witness]
    lines = [_item(x, said) for x in items[:WITNESS_ITEMS_SHOWN]]
    if len(items) > WITNESS_ITEMS_SHOWN:
        lines.append(f"... and {len(items) - WITNESS_ITEMS_SHOWN} more")
    return lines


def _item(item: Any, said: str) -> str:
    """One violation: its kind, where it is in the history, and its message."""
    if not isinstance(item, dict):
        return _cut(str(item))
    where = []
    if "index" in item:
        where.append(f"event {item['index']}")
    if isinstance(item.get("time_ms"), int | float):
        where.append(f"t={item['time_ms']:,.0f} ms")
    head = str(item.get("kind") or item.get("type") or "violation")
    if where:
        head += f" at {', '.join(where)}"
    message = item.get("message") or item.get("summary")
    if isinstance(message, str) and message in said:
        return _cut(head)
    if message:
        return _cut(f"{head}: {message}")
    scalars = [
        f"{k}={v}" for k, v in item.items()
        if k not in ("kind", "type", "index", "time_ms") and isinstance(v, str | int | float)
    ]  # fmt: skip
    return _cut(f"{head}: {', '.join(scalars)}" if scalars else head)


def _cut(text: str) -> str:
    """At most LINE_CHARS_MAX characters, cut at a word, marked as cut."""
    text = " ".join(text.split())
    if len(text) <= LINE_CHARS_MAX:
        return text
    head = text[: LINE_CHARS_MAX - 1].rsplit(" ", 1)[0]
    return head.rstrip(",;:") + "…"


def _names(group: Any) -> str:
    names = [str(n) for n in group] if isinstance(group, list) else [str(group)]
    extra = len(names) - NAMES_SHOWN
    shown = ",".join(names[:NAMES_SHOWN])
    return f"{shown} +{extra} more" if extra > 0 else shown


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
