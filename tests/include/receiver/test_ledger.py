"""The receivers' ledger on SQLite and on a real PostgreSQL: what it remembers, and that a
claim is won by exactly one of many at the same moment."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from include.receiver import ledger as ledger_module
from include.receiver.ledger import CLAIMED, SETTLED, Ledger


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("postgres_url")


def test_remembered_keys_are_recalled_until_they_expire(url):
    ledger = Ledger(url, retention=60)
    assert ledger.remember("event:1", "fingerprint") is None
    assert ledger.remember("event:1", "another") == "fingerprint"  # the first one stays
    assert ledger.recall("event:1") == "fingerprint"
    assert ledger.remember("event:2", "soon gone", ttl=-1) is None
    assert ledger.recall("event:2") is None
    assert ledger.remember("event:2", "again") is None  # expired entries are replaced


def test_of_twenty_receivers_claiming_at_once_exactly_one_wins(url):
    ledgers = [Ledger(url, retention=60) for _ in range(4)]  # four replicas' engines
    start = threading.Barrier(20)

    def claim(n: int) -> bool:
        start.wait()
        return ledgers[n % 4].claim("asset:7:airbyte://stripe", f"receiver-{n}").ours

    with ThreadPoolExecutor(20) as pool:
        won = list(pool.map(claim, range(20)))
    assert won.count(True) == 1
    owner = f"receiver-{won.index(True)}"
    assert ledgers[0].claim("asset:7:airbyte://stripe", "late").value == owner


def test_a_settled_claim_is_kept_for_good_and_never_claimed_again(url):
    ledger = Ledger(url, retention=60)
    assert ledger.claim("asset:7:x", "a").ours
    assert ledger.recall("asset:7:x") is None  # claimed, not done yet
    ledger.settle("asset:7:x", "12")
    again = ledger.claim("asset:7:x", "b")
    assert (again.ours, again.state, again.value) == (False, SETTLED, "12")
    assert ledger.recall("asset:7:x") == "12"


def test_a_mark_is_kept_for_good_and_the_first_stays(url):
    ledger = Ledger(url, retention=-1)  # remembered keys expire at once; marks do not
    assert ledger.recall("sync:7") is None
    ledger.mark("sync:7", "4")
    ledger.mark("sync:7", "5")
    assert ledger.recall("sync:7") == "4"
    assert ledger.remember("sync:7", "other") == "4"  # forgetting old keys leaves it
    claim = ledger.claim("sync:7", "a")
    assert (claim.ours, claim.state) == (False, SETTLED)


def test_a_released_claim_can_be_claimed_at_once(url):
    ledger = Ledger(url, retention=60)
    assert ledger.claim("failure:9", "a").ours
    ledger.release("failure:9", "b")  # not b's: stays
    assert not ledger.claim("failure:9", "c").ours
    ledger.release("failure:9", "a")
    assert ledger.claim("failure:9", "c").ours


def test_a_dead_receivers_claim_is_taken_over_once_stale(url, monkeypatch):
    ledger = Ledger(url, retention=60)
    assert ledger.claim("asset:8:x", "dead").ours
    live = ledger.claim("asset:8:x", "b")
    assert (live.ours, live.state, live.value) == (False, CLAIMED, "dead")
    monkeypatch.setattr(ledger_module, "STALE_CLAIM_SECONDS", 0.0)
    assert ledger.claim("asset:8:x", "b").ours
    with ledger.engine.connect() as db:
        value = db.execute(sa.text("SELECT value FROM airbyte_receiver_ledger")).scalar_one()
    assert value == "b"


def test_only_postgresql_and_sqlite_are_ledgers():
    with pytest.raises(ValueError, match="must be PostgreSQL or SQLite, not mysql"):
        Ledger("mysql+pymysql://u:secret@db/ledger", retention=60)
