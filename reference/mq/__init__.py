"""A transactional message broker (RocketMQ's semantics) on a Paxos group.

- `machine.BrokerMachine`: the broker's state (commit log, consume queues,
  half messages and op records, committed offsets, retry / dead-letter /
  check-max topics), replicated as a Paxos state machine;
- `broker.BrokerReplica`: a replica of that group that stamps time and runs
  the transaction check-back;
- `producer.TransactionalProducer`: the payment service, producing one event
  per payment (transactional, or the two naive ways);
- `consumer.MessageConsumer`: clustered consumers with committed offsets,
  retries, dead letters and idempotent effects.
"""

from reference.mq.broker import BrokerReplica
from reference.mq.consumer import EFFECTS, ConsumerConfig, MessageConsumer
from reference.mq.machine import BrokerConfig, BrokerMachine, queue_of
from reference.mq.messages import Payload, StoredMessage
from reference.mq.producer import MODES, ProducerConfig, TransactionalProducer

__all__ = [
    "EFFECTS",
    "MODES",
    "BrokerConfig",
    "BrokerMachine",
    "BrokerReplica",
    "ConsumerConfig",
    "MessageConsumer",
    "Payload",
    "ProducerConfig",
    "StoredMessage",
    "TransactionalProducer",
    "queue_of",
]
