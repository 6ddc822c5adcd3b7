"""When a process sheds flash claims in a burst: only when it is not keeping up (no network)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from livestream.api.admission import ClaimAdmission


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_that_is_answered_in_time_is_never_shed_however_many_are_in_flight() -> None:
    clock = Clock()
    admission = ClaimAdmission(max_wait_s=1.0, hard_cap=4096, clock=clock)
    tickets = []
    for _ in range(1500):  # the old fixed cap shed everything past 256
        ticket = admission.admit()
        assert ticket is not None
        tickets.append(ticket)
        clock.now += 0.0005
    assert admission.in_flight == 1500
    for ticket in tickets:
        admission.done(ticket)
    assert admission.in_flight == 0


def test_a_process_that_falls_behind_sheds_until_its_oldest_claim_is_answered() -> None:
    clock = Clock()
    admission = ClaimAdmission(max_wait_s=1.0, clock=clock)
    stuck, later = admission.admit(), None
    clock.now += 0.5
    later = admission.admit()
    assert stuck is not None and later is not None
    clock.now += 0.6  # the first has waited 1.1 s
    assert admission.admit() is None
    assert admission.oldest_wait() > 1.0
    admission.done(stuck)  # the next oldest has waited 0.6 s: take claims on again
    assert 0.59 < admission.oldest_wait() < 0.61
    assert admission.admit() is not None


def test_the_hard_cap_bounds_claims_in_flight_even_when_each_is_young() -> None:
    admission = ClaimAdmission(hard_cap=3, clock=Clock())
    tickets = [admission.admit() for _ in range(3)]
    assert None not in tickets
    assert admission.admit() is None
    admission.done(tickets[1])
    assert admission.admit() is not None


def test_a_ticket_given_back_twice_changes_nothing() -> None:
    admission = ClaimAdmission(clock=Clock())
    first, second = admission.admit(), admission.admit()
    assert first is not None and second is not None
    admission.done(first)
    admission.done(first)
    assert admission.in_flight == 1


steps = st.lists(
    st.one_of(
        st.tuples(st.just("admit"), st.just(0.0)),
        st.tuples(st.just("done"), st.integers(0, 50).map(float)),
        st.tuples(st.just("wait"), st.floats(0.0, 0.8)),
    ),
    max_size=200,
)


@given(steps)
def test_admission_sheds_exactly_when_the_oldest_waited_too_long_or_the_cap_is_reached(
    script: list[tuple[str, float]],
) -> None:
    clock = Clock()
    admission = ClaimAdmission(max_wait_s=1.0, hard_cap=20, clock=clock)
    in_flight: list[tuple[int, float]] = []  # (ticket, admitted at), oldest first
    for op, value in script:
        if op == "wait":
            clock.now += value
        elif op == "done" and in_flight:
            ticket, _ = in_flight.pop(int(value) % len(in_flight))
            admission.done(ticket)
        elif op == "admit":
            too_old = bool(in_flight) and clock.now - in_flight[0][1] > 1.0
            ticket = admission.admit()
            assert (ticket is None) == (too_old or len(in_flight) >= 20)
            if ticket is not None:
                in_flight.append((ticket, clock.now))
        assert admission.in_flight == len(in_flight) <= 20
