"""The three plant modules plantwatch watches."""

from enum import StrEnum

from plantwatch.domain.errors import UnknownModuleError


class Module(StrEnum):
    ENERGY = "energy"
    MACHINE = "machine"
    CYBER = "cyber"


def parse_module(value: str) -> Module:
    """Module from its name, with an error that lists the valid names."""
    try:
        return Module(value.strip().lower())
    except ValueError:
        valid = ", ".join(m.value for m in Module)
        raise UnknownModuleError(f"unknown module {value!r}; expected one of: {valid}") from None
