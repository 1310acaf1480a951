"""Clients: sans-IO nodes that issue payments and reads and record histories."""

from reference.clients.node import ClientConfig, PaymentClient, Record
from reference.clients.plan import ClientPlan, ClosedLoop, Payment

__all__ = ["ClientConfig", "ClientPlan", "ClosedLoop", "Payment", "PaymentClient", "Record"]
