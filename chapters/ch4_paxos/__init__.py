"""Chapter 4: the Paxos ledger. Chapter 3's cells, each ledger shard a Multi-Paxos
group across three cities, so losing a city loses no acknowledged payment."""

from chapters.ch4_paxos.stage import STAGE, PaxosDeployment, PaxosStage

__all__ = ["STAGE", "PaxosDeployment", "PaxosStage"]
