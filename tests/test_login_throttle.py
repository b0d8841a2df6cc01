"""The login throttle (contract 18): shared by every process on one message queue, and a
table that does not grow without bound when it is kept in memory."""
from __future__ import annotations

from services import cluster, form_login

from propsec.web.throttle import MemoryCounts

PASSWORD = "throttle-test-pw-1"


def attempt(server, password: str) -> int:
    return form_login(server.url, "sam", password)[1].status_code


def test_the_limit_holds_across_two_processes(tmp_path):
    with cluster(tmp_path, "throttle", {"sam": "staff"}, 2) as (a, b):
        a.create_user("sam", "staff", PASSWORD)
        codes = [attempt(server, "wrong") for server in (a, b, a, b, a)]
        assert codes == [401] * 5  # five failures, spread over both processes
        assert attempt(b, PASSWORD) == 429, "a sixth try must be refused on either process"
        assert attempt(a, PASSWORD) == 429


def test_the_memory_table_keeps_a_bounded_number_of_keys():
    counts = MemoryCounts(max_keys=100)
    for n in range(1000):
        counts.add(f"address-{n}")
    assert len(counts) == 100
    assert counts.count("address-999") == 1 and counts.count("address-0") == 0
