"""The plant modules plantwatch watches, by name.

A module is configuration, not code (adapters/modules): the seed's energy, machine and cyber modules, TEP as
"process", and whatever a user adds. `Module` is the name of one, a str. Which names are valid is decided when
the configurations are loaded (`register_modules`): until then only the seed's three are known, so
`Module("valve")` is valid once a "valve" configuration is.

`Module.ENERGY`, `Module.MACHINE` and `Module.CYBER` stay as they were when modules were an enum, and
iterating the class still gives those three seed modules; `known_modules()` gives every configured one.
"""

import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from plantwatch.domain.errors import UnknownModuleError

SEED_MODULES = ("energy", "machine", "cyber")
# A module name is a URL path segment, an MQTT topic level and a folder name: keep it plain.
MODULE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")

_lock = threading.Lock()
_known: dict[str, None] = dict.fromkeys(SEED_MODULES)  # ordered: seed modules first
_instances: dict[str, "Module"] = {}


class _ModuleType(type):
    """Lets the class be iterated like the enum it replaces: the seed modules, in their order."""

    def __iter__(cls) -> Iterator["Module"]:
        return iter([Module(name) for name in SEED_MODULES])

    def __len__(cls) -> int:
        return len(SEED_MODULES)

    def __contains__(cls, item: object) -> bool:
        return isinstance(item, str) and str.__str__(item) in SEED_MODULES


class Module(str, metaclass=_ModuleType):
    """A configured module's name. One instance per name, so `frame.module is Module.ENERGY` holds."""

    ENERGY: ClassVar["Module"]
    MACHINE: ClassVar["Module"]
    CYBER: ClassVar["Module"]

    def __new__(cls, value: str) -> "Module":
        if isinstance(value, Module):
            return value
        name = str(value)
        with _lock:
            if name not in _known:
                raise ValueError(f"{value!r} is not a configured module")
            instance = _instances.get(name)
            if instance is None:
                instance = _instances[name] = str.__new__(cls, name)
        return instance

    @property
    def value(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Module({self.value!r})"

    def __getnewargs__(self) -> tuple[str]:
        return (self.value,)

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, _handler: Any) -> Any:
        # Imported here so the domain does not need pydantic unless a pydantic model uses a Module.
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            _validate_module, serialization=core_schema.to_string_ser_schema(), ref="Module"
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, _core_schema: Any, _handler: Any) -> dict[str, Any]:
        return {"enum": [m.value for m in cls], "title": "Module", "type": "string"}


def _validate_module(value: Any) -> Module:
    if not isinstance(value, str):
        raise ValueError("a module name must be a string")
    try:
        return Module(value)
    except ValueError:
        valid = ", ".join(m.value for m in known_modules())
        raise ValueError(f"unknown module {value!r}; expected one of: {valid}") from None


Module.ENERGY = Module("energy")
Module.MACHINE = Module("machine")
Module.CYBER = Module("cyber")


def register_modules(names: Iterable[str]) -> list[Module]:
    """Make `names` (and the seed modules) the configured modules of this process; returns them all."""
    names = list(names)
    for name in names:
        if not MODULE_NAME.match(name):
            raise ValueError(f"module name {name!r} must match {MODULE_NAME.pattern}")
    with _lock:
        _known.clear()
        _known.update(dict.fromkeys([*SEED_MODULES, *names]))
    return known_modules()


def known_modules() -> list[Module]:
    """Every configured module: the seed modules first, then the others in configuration order."""
    with _lock:
        names = list(_known)
    return [Module(name) for name in names]


def parse_module(value: str) -> Module:
    """Module from its name, with an error that lists the valid names."""
    try:
        return Module(value.strip().lower())
    except ValueError:
        valid = ", ".join(m.value for m in known_modules())
        raise UnknownModuleError(f"unknown module {value!r}; expected one of: {valid}") from None
