"""Chapter 5: the transactional message queue (no payment without its event)."""

from chapters.ch5_mq.stage import STAGE

__all__ = ["STAGE"]
