"""The adaptive poll interval."""

from plugins.airbyte_client.wait import PollSchedule


def test_backs_off_geometrically_up_to_the_maximum():
    schedule = PollSchedule(minimum=2, maximum=10, factor=2)
    delays = [schedule.next_delay(status_changed=False) for _ in range(5)]
    assert delays == [2, 4, 8, 10, 10]


def test_status_change_snaps_back_to_the_minimum():
    schedule = PollSchedule(minimum=1, maximum=30, factor=3)
    schedule.next_delay(status_changed=False)
    schedule.next_delay(status_changed=False)
    assert schedule.next_delay(status_changed=True) == 1
    assert schedule.next_delay(status_changed=False) == 3


def test_never_sleeps_past_the_deadline():
    schedule = PollSchedule(minimum=5, maximum=5)
    assert schedule.next_delay(status_changed=False, remaining=1.5) == 1.5
    assert schedule.next_delay(status_changed=False, remaining=-3) == 0.0


def test_maximum_below_minimum_is_raised_to_it():
    assert PollSchedule(minimum=4, maximum=1).next_delay(status_changed=False) == 4


def test_quiet_polls_are_sparse_until_the_expected_end_then_close():
    schedule = PollSchedule(minimum=2, maximum=20, factor=2, quiet_interval=60)
    assert schedule.next_delay(status_changed=True, quiet_for=150) == 60
    assert schedule.next_delay(status_changed=False, quiet_for=90) == 60
    assert schedule.next_delay(status_changed=False, quiet_for=30) == 30
    assert [schedule.next_delay(status_changed=False) for _ in range(3)] == [2, 4, 8]
