"""Following a group's leader from outside: answers, refusals with and without hints, silence."""

from __future__ import annotations

from reference.paxos.leader import LeaderFollower

REPLICAS = ("n1", "n2", "n3")


def test_the_first_replica_is_believed_first() -> None:
    assert LeaderFollower(REPLICAS).leader == "n1"


def test_a_refusal_with_a_hint_follows_the_hint() -> None:
    follower = LeaderFollower(REPLICAS)
    follower.refused("n1", "n3")
    assert follower.leader == "n3"


def test_a_refusal_without_a_useful_hint_tries_the_next_replica() -> None:
    follower = LeaderFollower(REPLICAS)
    follower.refused("n1", None)
    assert follower.leader == "n2"
    follower.refused("n2", "n2")  # names itself: no news
    assert follower.leader == "n3"
    follower.refused("n3", "elsewhere")  # not a member: no news, round the ring
    assert follower.leader == "n1"


def test_a_stale_refusal_does_not_move_a_belief_that_moved_already() -> None:
    follower = LeaderFollower(REPLICAS)
    follower.refused("n1", "n2")
    follower.refused("n1", None)  # a second answer from n1, to an earlier send
    assert follower.leader == "n2"


def test_silence_tries_the_next_replica_and_an_answer_settles_it() -> None:
    follower = LeaderFollower(REPLICAS)
    follower.silent()
    follower.silent()
    assert follower.leader == "n3"
    follower.answered("n2")  # a late answer from n2: it leads
    assert follower.leader == "n2"
    follower.answered("client-7")  # not a member: ignored
    assert follower.leader == "n2"
