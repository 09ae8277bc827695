"""The error tree: the docstring's drawing, the classes and their JSON shape agree."""

from __future__ import annotations

import re

import pytest

from ticker import errors

ALL = [getattr(errors, name) for name in errors.__all__]


def drawn() -> dict[str, tuple[str, str]]:
    """Class name -> (status, code) as the module's docstring draws the tree."""
    rows = re.findall(r"[├└]── (\w+)\s+(\d{3})?\s*(\w+)?", errors.__doc__ or "")
    return {name: (status, code) for name, status, code in rows}


def test_every_error_is_drawn_with_its_status_and_code() -> None:
    tree = drawn()
    for cls in ALL:
        if cls is errors.TickerError:
            continue
        assert issubclass(cls, errors.TickerError)
        assert cls.__name__ in tree, f"{cls.__name__} is missing from the tree in ticker/errors.py"
        status, code = tree[cls.__name__]
        if status:
            assert int(status) == cls.status, cls.__name__
            assert code == cls.code, cls.__name__
    assert set(tree) == {cls.__name__ for cls in ALL} - {"TickerError"}


def test_statuses_and_codes_are_unique() -> None:
    answered = [cls for cls in ALL if cls not in (errors.TickerError, errors.ConfigError)]
    assert len({cls.status for cls in answered}) == len(answered)
    assert len({cls.code for cls in ALL}) == len(ALL)


@pytest.mark.parametrize("cls", ALL)
def test_one_json_shape(cls: type[errors.TickerError]) -> None:
    error = (
        cls("what went wrong", retry_after=3)  # type: ignore[call-arg]
        if cls in (errors.RateLimited, errors.Unavailable)
        else cls("what went wrong")
    )
    body = error.to_json()
    assert body == {"error": {"code": cls.code, "message": "what went wrong", "fields": []}}


def test_fields_travel_with_invalid_input() -> None:
    fields = [{"field": "headline", "message": "too long"}]
    assert errors.InvalidInput("bad", fields=fields).to_json()["error"]["fields"] == fields


def test_headers_a_client_acts_on() -> None:
    assert errors.Unauthorized("who?").headers["WWW-Authenticate"].startswith("Bearer")
    assert errors.RateLimited("slow down", retry_after=0.2).headers["Retry-After"] == "1"
    assert errors.RateLimited("slow down", retry_after=4.2).headers["Retry-After"] == "5"
    assert errors.Unavailable("later", retry_after=7).headers["Retry-After"] == "7"
