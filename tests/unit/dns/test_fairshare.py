"""FairShare: slots shared among clients (upstream queries in flight, DNS-over-TCP connections)."""

from burrow.dns.fairshare import FairShare, per_client_cap


def take_all(share: FairShare, client: str, total: int, per_client: int) -> int:
    n = 0
    while share.acquire(client, total, per_client):
        n += 1
    return n


def test_a_client_never_holds_more_than_its_cap():
    share = FairShare()
    assert take_all(share, "a", 100, 5) == 5
    assert share.refused == 1
    assert take_all(share, "b", 100, 5) == 5


def test_a_client_holding_some_keeps_below_an_equal_share_with_one_to_spare():
    # Holding h > 0, a client may take another only while (h + 1) * (holders + 1) <= total.
    share = FairShare()
    assert take_all(share, "a", 8, 8) == 4  # alone: half, the other half kept for a newcomer
    assert take_all(share, "b", 8, 8) == 2  # 8 / 3
    assert share.acquire("c", 8, 8)  # a client holding none gets a free slot


def test_a_client_holding_none_is_refused_only_when_full():
    share = FairShare()
    for c in range(4):
        assert share.acquire(f"c{c}", 4, 4)
    assert not share.acquire("late", 4, 4)


def test_as_slots_turn_over_eight_greedy_clients_leave_room_for_another():
    """Queries end and greedy clients ask again at once: within one turnover of their slots
    they are down to their share and slots stay free for a ninth client."""
    share = FairShare()
    total, clients = 32, [f"10.0.0.{i}" for i in range(8)]
    cap = per_client_cap(total, 0.25)
    for c in clients:
        take_all(share, c, total, cap)
    assert share.used == total  # a burst from idle can fill the pool ...
    for turn in range(2 * total):  # ... but each slot is given back in time, and taken again
        c = clients[turn % len(clients)]
        if share.held.get(c):
            share.release(c)
        for d in clients:
            take_all(share, d, total, cap)
    assert share.used <= total - total // (len(clients) + 1)
    assert share.acquire("10.0.0.100", total, cap)


def test_release_gives_back_and_forgets_clients_holding_nothing():
    share = FairShare()
    for _ in range(3):
        assert share.acquire("a", 10, 10)
    for _ in range(3):
        share.release("a")
    assert share.used == 0 and share.held == {}
    share.release("a")  # a stray release changes nothing
    assert share.used == 0 and share.held == {}


def test_burrow_itself_is_held_to_the_total_only():
    share = FairShare()
    assert take_all(share, None, 6, 1) == 6
    assert share.held == {}
    for _ in range(6):
        share.release(None)
    assert share.used == 0


def test_per_client_cap_is_at_least_one():
    assert per_client_cap(1024, 0.25) == 256
    assert per_client_cap(3, 0.1) == 1
