"""What a panel hands on to Textual's Widget, typed (not `**kwargs: object`)."""

from __future__ import annotations

from typing import TypedDict

__all__ = ["WidgetArgs"]


class WidgetArgs(TypedDict, total=False):
    """Textual's own keyword arguments of every widget: a panel takes these and passes them on."""

    name: str | None
    id: str | None
    classes: str | None
    disabled: bool
