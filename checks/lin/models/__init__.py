"""The models `d11 check lin --model NAME` knows, by name."""

from __future__ import annotations

from collections.abc import Callable

from checks.lin.model import Model
from checks.lin.models.accounts import LedgerModel
from checks.lin.models.kv import KvModel
from checks.lin.models.queue import QueueModel
from checks.lin.models.register import CasRegisterModel, EtcdModel, RegisterModel
from checks.lin.models.sets import SetModel

MODELS: dict[str, Callable[[], Model]] = {
    "register": RegisterModel,
    "cas-register": CasRegisterModel,
    "etcd": EtcdModel,
    "kv": KvModel,
    "queue": QueueModel,
    "set": SetModel,
    "ledger": LedgerModel,
}


def model_named(name: str) -> Model:
    """A fresh model by name; KeyError lists the known names."""
    try:
        return MODELS[name]()
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None


__all__ = [
    "MODELS",
    "CasRegisterModel",
    "EtcdModel",
    "KvModel",
    "LedgerModel",
    "Model",
    "QueueModel",
    "RegisterModel",
    "SetModel",
    "model_named",
]
