"""Viewer counts heard from other processes (livestream.room.presence), on a given clock."""

from __future__ import annotations

from livestream.room.presence import HEARTBEAT_S, STALE_S, Presence


def test_a_room_counts_the_other_processes_until_they_stop_telling() -> None:
    here = Presence("me")
    here.heard("s1", "me", 7, 0.0)  # our own count, looped back: already counted as sockets
    here.heard("s1", "p2", 3, 0.0)
    here.heard("s1", "p3", 4, 5.0)
    here.heard("s2", "p2", 9, 0.0)
    assert (here.elsewhere("s1", 5.0), here.elsewhere("s2", 5.0)) == (7, 9)
    here.heard("s1", "p3", 0, 6.0)  # its last viewer left
    assert here.elsewhere("s1", 6.0) == 3
    assert here.elsewhere("s1", STALE_S + 0.1) == 0  # p2 went quiet: gone
    here.prune(STALE_S + 0.1)
    assert here.elsewhere("s2", 0.0) == 0  # pruned with the rest of what p2 said


def test_a_process_tells_a_change_at_once_and_repeats_itself_only_while_it_has_viewers() -> None:
    here = Presence("me")
    assert not here.to_tell("s1", 0, 0.0)  # a room with nobody, never told of: nothing to say
    assert here.to_tell("s1", 2, 0.0)
    assert not here.to_tell("s1", 2, 1.0)
    assert here.to_tell("s1", 3, 1.5)  # changed
    assert not here.to_tell("s1", 3, 1.5 + HEARTBEAT_S - 0.1)
    assert here.to_tell("s1", 3, 1.5 + HEARTBEAT_S)  # heartbeat, so others keep counting it
    assert here.to_tell("s1", 0, 10.0)  # the last viewer left: said once
    assert not here.to_tell("s1", 0, 10.0 + 3 * HEARTBEAT_S)
    here.forget("s1")
    assert not here.to_tell("s1", 0, 30.0) and here.to_tell("s1", 1, 30.0)
