import json
from importlib import resources

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.phone import InvalidPhoneNumber
from consentry.domain.regions import STATES_BY_AREA_CODE, regions_for

USPS_STATES_AND_DC = {
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC",
    "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
}  # fmt: skip


@pytest.mark.parametrize(
    ("number", "state", "zone"),
    [
        ("+12125550143", "NY", "America/New_York"),
        ("+13055550143", "FL", "America/New_York"),
        ("+14055550143", "OK", "America/Chicago"),
        ("+14105550143", "MD", "America/New_York"),
        ("+12065550143", "WA", "America/Los_Angeles"),
        ("+15125550143", "TX", "America/Chicago"),
        ("+14155550143", "CA", "America/Los_Angeles"),
        ("+12025550143", "DC", "America/New_York"),
    ],
)
def test_well_known_area_codes_map_to_their_state_and_zone(number: str, state: str, zone: str) -> None:
    regions = regions_for(number)
    assert regions.country == "US"
    assert regions.states == (state,)
    assert regions.zones == (zone,)
    assert regions.geographic


def test_an_area_code_split_by_a_time_zone_line_reports_every_zone() -> None:
    # Parts of Idaho's 208 are on Mountain time, the panhandle on Pacific.
    regions = regions_for("+12083205555")
    assert regions.states == ("ID",)
    assert set(regions.zones) == {"America/Boise", "America/Los_Angeles"}


def test_non_us_numbers_have_a_country_but_no_state() -> None:
    french = regions_for("+33612345678")
    assert (french.country, french.states, french.zones) == ("FR", (), ("Europe/Paris",))
    canadian = regions_for("+16135550123")  # NANP, but Ontario
    assert (canadian.country, canadian.states) == ("CA", ())
    puerto_rico = regions_for("+17875551234")
    assert (puerto_rico.country, puerto_rico.states) == ("PR", ())


def test_toll_free_numbers_are_not_geographic_and_may_be_anywhere_in_the_nanp() -> None:
    regions = regions_for("+18005550199")
    assert regions.states == ()
    assert not regions.geographic
    assert {"America/New_York", "America/Los_Angeles", "Pacific/Honolulu"} <= set(regions.zones)
    assert "Etc/Unknown" not in regions.zones


def test_contact_zone_overrides_derived_zones_but_keeps_the_state() -> None:
    regions = regions_for("+13055550143", zones_override=["America/Chicago", "America/Chicago"])
    assert regions.zones == ("America/Chicago",)
    assert regions.states == ("FL",)
    assert regions.zones_overridden
    assert not regions_for("+13055550143").zones_overridden
    assert regions_for("+13055550143", zones_override=[]).zones == ("America/New_York",)


def test_unknown_override_zone_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        regions_for("+13055550143", zones_override=["Mars/Olympus"])


@pytest.mark.parametrize("number", ["+1212", "+19995550143", "not a number", ""])
def test_invalid_numbers_raise(number: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        regions_for(number)


def test_area_code_table_holds_us_states_only() -> None:
    raw = json.loads(resources.files("consentry.domain.data").joinpath("nanp_area_codes.json").read_text())
    assert raw["area_codes"], "the table must not be empty"
    for area_code, states in STATES_BY_AREA_CODE.items():
        assert len(area_code) == 3
        assert area_code.isdigit()
        assert area_code[0] not in "01"  # NANP area codes start with 2-9
        assert states
        assert set(states) <= USPS_STATES_AND_DC, area_code
    # Canadian and toll-free area codes are not US states.
    assert not {"613", "416", "514", "604", "800", "888"} & set(STATES_BY_AREA_CODE)
    assert len(STATES_BY_AREA_CODE) > 300


@given(
    area_code=st.sampled_from(sorted(STATES_BY_AREA_CODE)),
    line=st.integers(min_value=2_000_000, max_value=9_999_999),
)
def test_every_valid_number_of_a_tabled_area_code_is_a_us_number_of_that_state(
    area_code: str, line: int
) -> None:
    number = f"+1{area_code}{line}"
    if not phonenumbers.is_valid_number(phonenumbers.parse(number)):
        return
    regions = regions_for(number)
    assert regions.country == "US"
    assert regions.states == STATES_BY_AREA_CODE[area_code]
    assert regions.zones
