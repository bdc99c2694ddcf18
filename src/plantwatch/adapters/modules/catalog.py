"""The configured modules: the built-in configurations shipped with plantwatch, then a user folder's, which
add modules or override built-in ones by name.

The catalog a process works with is made active once, where the process is wired (bootstrap): it registers
the module names (so `Module("valve")` is valid) and is what the loaders read a module's layout from. Until
one is activated, the built-in configurations are (registered on first use).
"""

import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from plantwatch.adapters.modules.config import ModuleConfig, read_module_config
from plantwatch.domain.errors import ModuleConfigError, UnknownModuleError
from plantwatch.domain.modules import SEED_MODULES, Module, known_modules, register_modules

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
CONFIG_SUFFIX = ".yaml"


@dataclass(frozen=True)
class ModuleCatalog:
    """Configurations by module name, seed modules first, and the file each was read from."""

    configs: dict[str, ModuleConfig]
    origins: dict[str, Path] = field(default_factory=dict)
    user_dir: Path | None = None

    def __iter__(self) -> Iterator[ModuleConfig]:
        return iter(self.configs.values())

    def __contains__(self, name: object) -> bool:
        return str(name) in self.configs

    @property
    def names(self) -> list[str]:
        return list(self.configs)

    def get(self, module: Module | str) -> ModuleConfig:
        try:
            return self.configs[str(module)]
        except KeyError:
            raise UnknownModuleError(
                f"unknown module {str(module)!r}; expected one of: {', '.join(self.configs)}"
            ) from None

    def is_builtin(self, name: str) -> bool:
        origin = self.origins.get(name)
        return origin is not None and origin.parent == BUILTIN_DIR


def read_config_dir(directory: Path) -> dict[str, tuple[ModuleConfig, Path]]:
    """Every `*.yaml` in `directory`, by module name; a missing folder holds none."""
    if not directory.is_dir():
        return {}
    found: dict[str, tuple[ModuleConfig, Path]] = {}
    for path in sorted(directory.glob(f"*{CONFIG_SUFFIX}")):
        config = read_module_config(path)
        found[config.name] = (config, path)
    return found


@functools.cache
def builtin_config(name: str) -> ModuleConfig:
    """A built-in configuration as shipped, whatever a user folder overrides: the public layouts' loaders."""
    return read_module_config(BUILTIN_DIR / f"{name}{CONFIG_SUFFIX}")


def load_catalog(user_dir: Path | None = None) -> ModuleCatalog:
    """Built-in configurations, then `user_dir`'s (added, or replacing a built-in one of the same name)."""
    found = read_config_dir(BUILTIN_DIR)
    missing = [name for name in SEED_MODULES if name not in found]
    if missing:
        raise ModuleConfigError(str(BUILTIN_DIR), f"built-in configurations missing for {missing}")
    if user_dir is not None:
        found.update(read_config_dir(user_dir))
    order = [*SEED_MODULES, *sorted(name for name in found if name not in SEED_MODULES)]
    return ModuleCatalog(
        configs={name: found[name][0] for name in order},
        origins={name: found[name][1] for name in order},
        user_dir=user_dir,
    )


_lock = threading.Lock()
_active: ModuleCatalog | None = None


def activate_catalog(catalog: ModuleCatalog) -> ModuleCatalog:
    """Make `catalog` the process's modules: register their names and serve their configurations."""
    global _active
    with _lock:
        register_modules(catalog.names)
        _active = catalog
    return catalog


def active_catalog() -> ModuleCatalog:
    """The activated catalog; the built-in configurations (then registered) when none was activated."""
    global _active
    with _lock:
        if _active is None:
            _active = load_catalog(None)
            register_modules(_active.names)
        return _active


def reset_catalog() -> None:
    """Forget the activated catalog (tests): the built-in configurations and the seed modules again."""
    global _active
    with _lock:
        _active = None
        register_modules([])


def module_config(module: Module | str) -> ModuleConfig:
    """The active configuration of `module`."""
    return active_catalog().get(module)


def configured_modules() -> list[Module]:
    """Every module the process serves (the registered names)."""
    return known_modules()
