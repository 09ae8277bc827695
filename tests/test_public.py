"""The public surface is explicit: what ``ticker`` exports is what ``__all__`` lists."""

import types

import ticker


def test_all_is_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(ticker).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public | {"__version__"} == set(ticker.__all__)
