"""Full-link load-test tagging: a trace context in every request, shadow data.

Chapter 7 replays production-shaped traffic through the production path.
Two things keep that safe, as Alipay's full-link stress tests (and the open
source Takin) do it:

- a **tag** that travels with every request, across every hop: SOFATracer
  carries it in its business baggage as `mark=T` (`mark=F`, or no tag, is
  production). With it travel a trace id (one per payment) and a span id
  (one per hop), so a payment's path can be rebuilt from the history;
- **shadow data**: the data layer sends a tagged write to a shadow account
  (the production id with the `pt_` prefix, as shadow tables are named)
  and never to a production row. A production read never sees a shadow row.

Around them: an allow-list of the services that take tagged traffic, a kill
switch that stops all of it at once, and a guard in front of external
parties (a bank channel must never see a test payment: it answers a mock).

Every node that serves a traced request emits a `span` trace event
(`emit_span`); the chapter 7 deployment records them in the history, and
`checks.isolation` judges the isolation from that history alone.
"""

from __future__ import annotations

from reference.tracing.context import (
    LOAD_TEST_TAG,
    LOAD_TEST_VALUE,
    PRODUCTION_VALUE,
    SPAN_EVENT,
    TraceContext,
    emit_span,
    new_trace,
)
from reference.tracing.shadow import (
    SHADOW_PREFIX,
    ExternalGuard,
    LoadTestPolicy,
    LoadTestSwitch,
    in_shadow_lane,
    is_shadow,
    production_account,
    shadow_account,
    shadow_name,
    shadow_request,
    written_accounts,
)

__all__ = [
    "LOAD_TEST_TAG",
    "LOAD_TEST_VALUE",
    "PRODUCTION_VALUE",
    "SHADOW_PREFIX",
    "SPAN_EVENT",
    "ExternalGuard",
    "LoadTestPolicy",
    "LoadTestSwitch",
    "TraceContext",
    "emit_span",
    "in_shadow_lane",
    "is_shadow",
    "new_trace",
    "production_account",
    "shadow_account",
    "shadow_name",
    "shadow_request",
    "written_accounts",
]
