"""Modules as configuration: the YAML schema, the built-in configurations and the user folder."""

from plantwatch.adapters.modules.catalog import (
    BUILTIN_DIR,
    ModuleCatalog,
    activate_catalog,
    active_catalog,
    configured_modules,
    load_catalog,
    module_config,
    reset_catalog,
)
from plantwatch.adapters.modules.config import (
    FeatureConfig,
    FeatureKind,
    LayoutConfig,
    ModuleConfig,
    parse_module_config,
    read_module_config,
)

__all__ = [
    "BUILTIN_DIR",
    "FeatureConfig",
    "FeatureKind",
    "LayoutConfig",
    "ModuleCatalog",
    "ModuleConfig",
    "activate_catalog",
    "active_catalog",
    "configured_modules",
    "load_catalog",
    "module_config",
    "parse_module_config",
    "read_module_config",
    "reset_catalog",
]
