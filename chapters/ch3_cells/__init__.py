"""Chapter 3: LDC cells (RZone / GZone / CZone), async replication, failover."""

from chapters.ch3_cells.stage import STAGE, CellsStage

__all__ = ["STAGE", "CellsStage"]
