"""Allowed users limited in time (contract section 14, v2): weekly windows and `validUntil` in
the site's time zone, `outside-schedule` alerts, across midnight and daylight-saving changes.

The clock is the one thing these tests set: the handlers' `utcnow` is replaced by a fixed
moment, so "Saturday 03:00 in Berlin" is an exact instant and not whenever the suite runs."""
from __future__ import annotations

from datetime import datetime

import pytest
from helpers import expect, expect_error
from helpers import clients_fixture  # noqa: F401  (provides the `clients` fixture)

from propsec import schedules
from propsec.handlers import entries, visitors

BERLIN = schedules.site_zone("Europe/Berlin")
NIGHT_SHIFT = {"days": [5], "from": "22:00", "to": "06:00"}  # Friday night into Saturday


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def refused(window_list, at_utc: str, zone=BERLIN, until=None) -> str | None:
    stored = schedules.dump([schedules.Window.model_validate(w) for w in window_list])
    return schedules.refusal(stored, until, utc(at_utc), zone)


# -- the windows themselves, on exact instants -------------------------------------------------

@pytest.mark.parametrize("at_utc, inside", [
    ("2027-01-08T20:59", False),  # Friday 21:59 in Berlin (UTC+1): before the shift
    ("2027-01-08T21:00", True),   # Friday 22:00: it starts
    ("2027-01-09T02:00", True),   # Saturday 03:00: past midnight, still on
    ("2027-01-09T04:59", True),   # Saturday 05:59
    ("2027-01-09T05:00", False),  # Saturday 06:00: over
    ("2027-01-09T21:30", False),  # Saturday 22:30: Saturday is not a listed day
    ("2027-01-07T22:00", False),  # Thursday 23:00 → no
])
def test_a_window_whose_end_is_before_its_start_runs_past_midnight(at_utc, inside):
    assert (refused([NIGHT_SHIFT], at_utc) is None) is inside


def test_a_sunday_night_window_ends_on_monday_morning():
    sunday_night = {"days": [7], "from": "23:00", "to": "01:00"}
    assert refused([sunday_night], "2027-01-10T22:30") is None      # Sunday 23:30
    assert refused([sunday_night], "2027-01-10T23:30") is None      # Monday 00:30
    assert refused([sunday_night], "2027-01-11T00:30") == "outside-schedule"  # Monday 01:30


def test_equal_from_and_to_is_the_whole_day_and_the_next_is_outside():
    whole_wednesday = {"days": [3], "from": "00:00", "to": "00:00"}
    assert refused([whole_wednesday], "2027-01-05T23:00") is None   # Wednesday 00:00
    assert refused([whole_wednesday], "2027-01-06T22:59") is None   # Wednesday 23:59
    assert refused([whole_wednesday], "2027-01-06T23:00") == "outside-schedule"


def test_spring_forward_keeps_the_wall_clock_hours():
    # Berlin, Sunday 2027-03-28: at 02:00 CET the clocks go to 03:00 CEST.
    early = {"days": [7], "from": "01:00", "to": "04:00"}
    assert refused([early], "2027-03-28T00:30") is None               # 01:30 CET
    assert refused([early], "2027-03-28T01:30") is None               # 03:30 CEST
    assert refused([early], "2027-03-28T02:00") == "outside-schedule"  # 04:00 CEST: over after
    # only two real hours that night; a day later the same window is three hours long.
    assert refused([{"days": [1], "from": "01:00", "to": "04:00"}], "2027-03-29T01:30") is None
    nine_to_five = {"days": [1], "from": "09:00", "to": "17:00"}
    assert refused([nine_to_five], "2027-03-22T08:00") is None        # 09:00 CET (UTC+1)
    assert refused([nine_to_five], "2027-03-29T07:00") is None        # 09:00 CEST (UTC+2)
    assert refused([nine_to_five], "2027-03-29T15:00") == "outside-schedule"  # 17:00 CEST


def test_fall_back_counts_the_repeated_hour_both_times():
    # Berlin, Sunday 2027-10-31: at 03:00 CEST the clocks go back to 02:00 CET.
    repeated = {"days": [7], "from": "02:00", "to": "02:30"}
    assert refused([repeated], "2027-10-31T00:15") is None               # 02:15 CEST
    assert refused([repeated], "2027-10-31T00:45") == "outside-schedule"  # 02:45 CEST
    assert refused([repeated], "2027-10-31T01:15") is None               # 02:15 CET, again
    assert refused([repeated], "2027-10-31T01:45") == "outside-schedule"  # 02:45 CET


def test_valid_until_ends_every_window():
    always = {"days": [1, 2, 3, 4, 5, 6, 7], "from": "00:00", "to": "00:00"}
    until = utc("2027-01-09T12:00")
    assert refused([always], "2027-01-09T11:59", until=until) is None
    assert refused([always], "2027-01-09T12:00", until=until) == "outside-schedule"
    assert schedules.refusal(None, until, utc("2027-01-10T00:00"), BERLIN) == "outside-schedule"
    assert schedules.refusal(None, None, utc("2027-01-10T00:00"), BERLIN) is None


def test_a_valid_until_without_an_offset_is_read_on_the_site_clock():
    assert schedules.parse_valid_until("2027-07-01T18:00", BERLIN) == utc("2027-07-01T16:00")
    assert schedules.parse_valid_until("2027-07-01T18:00Z", BERLIN) == utc("2027-07-01T18:00")
    assert schedules.parse_valid_until("2027-07-01T18:00-05:00", BERLIN) == utc(
        "2027-07-01T23:00")


def test_an_unknown_time_zone_stops_the_start_up(monkeypatch, tmp_path):
    from propsec.config import load_settings

    monkeypatch.setenv("PROPSEC_TIMEZONE", "Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="PROPSEC_TIMEZONE"):
        load_settings(tmp_path)


# -- through the wire ---------------------------------------------------------------------------

@pytest.fixture
def clock(monkeypatch, app):
    """Sets the moment the handlers see, and the site's zone to Berlin."""
    app.config["PROPSEC_TIMEZONE"] = "Europe/Berlin"

    def set_to(text: str):
        moment = utc(text)
        monkeypatch.setattr(entries, "utcnow", lambda: moment)
        monkeypatch.setattr(visitors, "utcnow", lambda: moment)
    return set_to


def enter(staff, pid, user_id) -> dict:
    return expect(staff.call("add-auth-entry", propertyId=pid, userId=user_id), "success",
                  "authorized")


def test_a_listed_user_is_authorized_only_inside_their_windows(clients, site, clock):
    owner, staff = clients["owner"], clients["staff"]
    p1 = site["p1"]
    expect(owner.call("add-allowed-user", propertyId=p1, userId="neighbour",
                      schedule=[NIGHT_SHIFT]), "success")
    clock("2027-01-09T02:00")  # Saturday 03:00 in Berlin: on shift
    assert enter(staff, p1, "neighbour")["authorized"] is True
    clock("2027-01-09T09:00")  # Saturday 10:00: not
    answer = enter(staff, p1, "neighbour")
    assert answer["authorized"] is False
    alerts = expect(staff.call("get-open-alerts"), "data")["alerts"]
    [alert] = [a for a in alerts if a["id"] == answer["alertId"]]
    assert (alert["reason"], alert["userId"], alert["severity"]) == (
        "outside-schedule", "neighbour", "medium")  # disarmed → medium
    expect(owner.call("set-arming", propertyId=p1, mode="away"), "success")
    answer = enter(staff, p1, "stranger")
    alerts = expect(staff.call("get-open-alerts"), "data")["alerts"]
    [alert] = [a for a in alerts if a["id"] == answer["alertId"]]
    assert (alert["reason"], alert["severity"]) == ("unauthorized-entry", "critical")
    assert enter(staff, p1, "owner")["authorized"] is True  # the owner has no schedule


def test_valid_until_in_the_past_is_accepted_and_never_authorizes(clients, site, clock):
    owner, staff = clients["owner"], clients["staff"]
    clock("2027-01-09T09:00")
    expect(owner.call("add-allowed-user", propertyId=site["p1"], userId="neighbour",
                      validUntil="2027-01-09T10:00"), "success")  # 10:00 Berlin = 09:00 UTC
    answer = enter(staff, site["p1"], "neighbour")
    assert answer["authorized"] is False
    clock("2027-01-09T08:59")
    assert enter(staff, site["p1"], "neighbour")["authorized"] is True


def test_adding_again_replaces_the_limits_and_details_show_them(clients, site, clock):
    owner, staff, p1 = clients["owner"], clients["staff"], site["p1"]
    expect(owner.call("add-allowed-user", propertyId=p1, userId="neighbour",
                      schedule=[{"days": [5, 5, 1], "from": "08:00", "to": "12:30"}],
                      validUntil="2027-12-31T23:59:00+01:00"), "success")
    details = expect(owner.call("get-allowed-users", propertyId=p1), "data")
    assert details["allowedUsers"] == {"neighbour": details["allowedUsers"]["neighbour"]}
    [row] = details["allowedUserDetails"]
    assert row == {"userId": "neighbour", "fullName": details["allowedUsers"]["neighbour"],
                   "schedule": [{"days": [1, 5], "from": "08:00", "to": "12:30"}],
                   "validUntil": "2027-12-31T22:59:00.000Z"}
    clock("2027-01-09T09:00")  # a Saturday: outside Monday/Friday mornings
    assert enter(staff, p1, "neighbour")["authorized"] is False
    expect(owner.call("add-allowed-user", propertyId=p1, userId="neighbour"), "success")
    [row] = expect(owner.call("get-allowed-users", propertyId=p1), "data")["allowedUserDetails"]
    assert (row["schedule"], row["validUntil"]) == (None, None)
    assert enter(staff, p1, "neighbour")["authorized"] is True


def test_armed_away_a_listed_visitor_outside_their_window_raises_an_alert(clients, site, clock):
    owner, staff, p1 = clients["owner"], clients["staff"], site["p1"]
    expect(owner.call("add-allowed-user", propertyId=p1, userId="neighbour",
                      schedule=[NIGHT_SHIFT]), "success")
    expect(owner.call("set-arming", propertyId=p1, mode="away"), "success")
    visit = {"propertyId": p1, "cameraId": site["camera"], "userId": "neighbour"}
    clock("2027-01-09T02:00")  # on shift
    expect(staff.call("add-visitor", visit), "success")
    assert expect(staff.call("get-open-alerts"), "data")["alerts"] == []
    clock("2027-01-09T12:00")
    expect(staff.call("add-visitor", visit), "success")
    [alert] = expect(staff.call("get-open-alerts"), "data")["alerts"]
    assert (alert["reason"], alert["severity"]) == ("visitor-while-armed", "high")


@pytest.mark.parametrize("schedule", [
    "weekdays", {"days": [1], "from": "08:00", "to": "09:00"}, [{"days": [], "from": "08:00",
                                                                   "to": "09:00"}],
    [{"days": [0], "from": "08:00", "to": "09:00"}], [{"days": [8], "from": "08:00", "to": "09:00"}],
    [{"days": ["1"], "from": "08:00", "to": "09:00"}], [{"days": [1], "from": "8:00", "to": "09:00"}],
    [{"days": [1], "from": "24:00", "to": "09:00"}], [{"days": [1], "from": "08:00"}],
    [{"days": [1], "from": "08:00", "to": "09:60"}], [{"days": [1], "from": 800, "to": "09:00"}],
    [{"days": [1], "from": "08:00:00", "to": "09:00"}],
])
def test_bad_windows_are_a_validation_error_naming_schedule(clients, site, schedule):
    owner = clients["owner"]
    answer = owner.call("add-allowed-user", propertyId=site["p1"], userId="neighbour",
                        schedule=schedule)
    expect_error(answer, "validation_error", "schedule")
    assert expect(owner.call("get-allowed-users", propertyId=site["p1"]),
                  "data")["allowedUserDetails"] == []


@pytest.mark.parametrize("until", ["tomorrow", "2027-13-01T00:00", 1767225600, "", "9999-12-31T23:59-05:00"])
def test_a_bad_valid_until_is_a_validation_error(clients, site, until):
    answer = clients["owner"].call("add-allowed-user", propertyId=site["p1"], userId="neighbour",
                                   validUntil=until)
    expect_error(answer, "validation_error", "validUntil")
