"""The payment service: procedures over a SQL store, and their messages."""

from reference.payment.accounts import merchant_account, parse_account, user_account
from reference.payment.messages import (
    Balances,
    LegReply,
    LegRequest,
    Payments,
    PayReply,
    PayRequest,
    ReadBalances,
    ReadPayments,
    RefundReply,
    RefundRequest,
)
from reference.payment.service import PAYMENT_PROCEDURES, PAYMENT_SCHEMA, open_accounts

__all__ = [
    "PAYMENT_PROCEDURES",
    "PAYMENT_SCHEMA",
    "Balances",
    "LegReply",
    "LegRequest",
    "PayReply",
    "PayRequest",
    "Payments",
    "ReadBalances",
    "ReadPayments",
    "RefundReply",
    "RefundRequest",
    "merchant_account",
    "open_accounts",
    "parse_account",
    "user_account",
]
