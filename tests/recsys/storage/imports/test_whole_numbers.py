"""A whole-number field takes what a spreadsheet writes ("5", "-1", "5.0") and nothing that only
Python's int() or float() would: digit separators, exponents, non-ASCII digits."""

from __future__ import annotations

import pytest

from recsys.storage.imports.fields import FieldError, integer


@pytest.mark.parametrize(("raw", "value"), [("5", 5), ("-3", -3), ("+2", 2), ("5.0", 5), ("12.00", 12), ("5.", 5), ("007", 7)])
def test_whole_numbers_as_spreadsheets_write_them(raw: str, value: int) -> None:
    assert integer({"quantity": raw}, "quantity") == value


@pytest.mark.parametrize("raw", ["1_0", "1e3", "5.5", "²", "٥", "1,000", "0x10", "--1", ".5"])
def test_what_only_int_or_float_would_take_is_an_error_naming_the_field(raw: str) -> None:
    with pytest.raises(FieldError) as caught:
        integer({"quantity": raw}, "quantity")
    assert caught.value.field == "quantity" and raw in str(caught.value)


def test_bounds_still_apply() -> None:
    with pytest.raises(FieldError, match="below 1"):
        integer({"quantity": "0.0"}, "quantity", lo=1)


@pytest.mark.parametrize("digits", [19, 5_000])
def test_a_number_too_long_is_an_error_naming_the_field_not_a_crash(digits: int) -> None:
    """int() refuses strings past 4,300 digits with a plain ValueError, which aborted the import."""
    with pytest.raises(FieldError, match="too large") as caught:
        integer({"quantity": "9" * digits}, "quantity")
    assert caught.value.field == "quantity"
    assert integer({"quantity": "0" * 30 + "7"}, "quantity") == 7  # leading zeros are not size
