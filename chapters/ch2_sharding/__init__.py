"""Chapter 2: sharding by user id, and cross-shard payments (naive, then TCC)."""

from chapters.ch2_sharding.stage import STAGE, ShardingStage

__all__ = ["STAGE", "ShardingStage"]
