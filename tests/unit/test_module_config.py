"""Module configurations: the built-in ones, a user folder that adds or overrides, errors naming file and
field, the Module name type, and the configured loader on layouts unlike the seed's."""

from pathlib import Path

import numpy as np
import pytest

from plantwatch.adapters.datasets.configured import load_module_csv
from plantwatch.adapters.datasets.loading import load_readings_csv
from plantwatch.adapters.modules import (
    activate_catalog,
    active_catalog,
    load_catalog,
    parse_module_config,
    read_module_config,
)
from plantwatch.domain.errors import DataFileError, ModuleConfigError, UnknownModuleError
from plantwatch.domain.modules import Module, known_modules, parse_module

VALVE_YAML = """
name: valve
title: Valve line
default_detector: pca
features:
  - {name: flow, column: "Flow (l/min)", unit: l/min}
  - {name: pump, column: Pump, kind: binary, codes: {"off": 0, "on": 1}}
timestamp: {column: Zeit, formats: ["%d.%m.%Y %H:%M"]}
separator: ";"
label: {column: Status, codes: {OK: 0, ALARM: 1, "?": null}}
sampling_interval: 1min
"""


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_configurations_cover_the_seed_modules_and_tep() -> None:
    catalog = load_catalog()
    assert catalog.names == ["energy", "machine", "cyber", "process"]
    assert [layout.name for layout in catalog.get("cyber").layouts] == ["swat", "batadal"]
    assert len(catalog.get("process").layouts[0].features) == 52
    assert all(catalog.is_builtin(name) for name in catalog.names)


def test_user_folder_adds_and_overrides_modules(tmp_path: Path) -> None:
    _write(tmp_path, "valve", VALVE_YAML)
    _write(tmp_path, "machine", VALVE_YAML.replace("name: valve", "name: machine"))
    catalog = activate_catalog(load_catalog(tmp_path))
    assert catalog.names == ["energy", "machine", "cyber", "process", "valve"]
    assert catalog.get("machine").layouts[0].feature_names == ["flow", "pump"]
    assert not catalog.is_builtin("machine") and catalog.is_builtin("energy")
    assert parse_module("Valve ") is Module("valve")
    assert [m.value for m in known_modules()] == catalog.names
    # the seed modules still iterate as the enum did
    assert list(Module) == [Module.ENERGY, Module.MACHINE, Module.CYBER]


def test_module_names_are_checked_until_configured() -> None:
    with pytest.raises(UnknownModuleError, match="expected one of: energy, machine, cyber"):
        parse_module("valve")
    assert Module("energy") is Module.ENERGY and Module.ENERGY.value == "energy" == Module.ENERGY
    assert f"{Module.CYBER}" == "cyber"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ('kind: binary, codes: {"off": 0, "on": 1}', "layouts[0].features[1]", "exactly two numbers"),
        ('codes: {"off": 0, "on": 1}', "layouts[0].features[1].codes", "quote it"),
        ("name: pump, column: Pump", None, None),
        ('formats: ["%d.%m.%Y %H:%M"]', "layouts[0].timestamp", "needs formats"),
        ("default_detector: pca", "default_detector", "one of"),
        ("sampling_interval: 1min", "layouts[0].sampling_interval", "not a time interval"),
    ],
)
def test_bad_configuration_names_file_and_field(
    tmp_path: Path, change: str, field: str | None, message: str | None
) -> None:
    broken = {
        'kind: binary, codes: {"off": 0, "on": 1}': 'kind: binary, codes: {"off": 0, "on": 0}',
        'codes: {"off": 0, "on": 1}': "codes: {off: 0, on: 1}",
        "name: pump, column: Pump": "name: flow, column: Pump",
        'formats: ["%d.%m.%Y %H:%M"]': "formats: []",
        "default_detector: pca": "default_detector: magic",
        "sampling_interval: 1min": "sampling_interval: often",
    }[change]
    path = _write(tmp_path, "valve", VALVE_YAML.replace(change, broken))
    with pytest.raises(ModuleConfigError) as caught:
        read_module_config(path)
    assert str(path) in str(caught.value)
    if field is not None:
        assert caught.value.field is not None and caught.value.field.startswith(field)
        assert message in str(caught.value)
    else:
        assert "feature names must be unique" in str(caught.value)


def test_yaml_errors_name_the_line_and_file_names_the_module(tmp_path: Path) -> None:
    path = _write(tmp_path, "valve", "name: valve\nfeatures: [\n")
    with pytest.raises(ModuleConfigError, match=r"valve.yaml: not valid YAML at line \d"):
        read_module_config(path)
    misnamed = _write(tmp_path, "pump", VALVE_YAML)
    with pytest.raises(ModuleConfigError, match=r"must be called valve\.yaml") as caught:
        read_module_config(misnamed)
    assert caught.value.field == "name"


def test_configuration_round_trips_through_yaml() -> None:
    config = parse_module_config(__import__("yaml").safe_load(VALVE_YAML), "valve.yaml")
    again = parse_module_config(__import__("yaml").safe_load(config.to_yaml()), "again.yaml")
    assert again == config


def test_configured_loader_reads_codes_labels_and_decimal_commas(tmp_path: Path) -> None:
    _write(tmp_path, "valve", VALVE_YAML)
    activate_catalog(load_catalog(tmp_path))
    text = "Zeit;Flow (l/min);Pump;Status\n01.03.2024 06:00;12,5;on;OK\n01.03.2024 06:01;3,25;off;ALARM\n"
    frame = load_readings_csv(Module("valve"), text, "line-1")
    assert frame.module is Module("valve") and frame.source == "line-1"
    assert frame.values.to_dict("list") == {"flow": [12.5, 3.25], "pump": [1.0, 0.0]}
    assert frame.labels is not None and frame.labels.tolist() == [0.0, 1.0]
    assert str(frame.values.index[1]) == "2024-03-01 06:01:00"


@pytest.mark.parametrize(
    ("body", "row", "column", "message"),
    [
        ("01.03.2024 06:00;12,5;maybe;OK\n", 2, "Pump", "'maybe' is not one of: off, on"),
        ("01.03.2024 06:00;lots;on;OK\n", 2, "Flow (l/min)", "not a finite number"),
        ("01.03.2024 06:00;1;on;OK\n2024-03-01 06:01;1;on;OK\n", 3, "Zeit", "does not match the format"),
        ("01.03.2024 06:00;1;on;OK\n01.03.2024 05:00;1;on;OK\n", 3, "Zeit", "is not after"),
    ],
)
def test_data_that_does_not_match_its_configuration_names_file_row_and_column(
    tmp_path: Path, body: str, row: int, column: str, message: str
) -> None:
    config = parse_module_config(__import__("yaml").safe_load(VALVE_YAML), "valve.yaml")
    activate_catalog(load_catalog(_write(tmp_path / "modules", "valve", VALVE_YAML).parent))
    path = tmp_path / "run.csv"
    path.write_text("Zeit;Flow (l/min);Pump;Status\n" + body, encoding="utf-8")
    with pytest.raises(DataFileError) as caught:
        load_module_csv(config, path)
    assert (caught.value.path, caught.value.row, caught.value.column) == (str(path), row, column)
    assert message in caught.value.message


def test_missing_column_is_named(tmp_path: Path) -> None:
    activate_catalog(load_catalog(_write(tmp_path, "valve", VALVE_YAML).parent))
    with pytest.raises(DataFileError, match="missing required column") as caught:
        load_readings_csv(Module("valve"), "Zeit;Pump\n01.03.2024 06:00;on\n", "run.csv")
    assert caught.value.column == "Flow (l/min)"


def _tep_text(rows: int, columns: int, transposed: bool = False) -> str:
    values = np.arange(rows * columns, dtype=float).reshape(rows, columns) / 7
    table = values.T if transposed else values
    return "\n".join("   " + "   ".join(f"{v:.7e}" for v in line) for line in table) + "\n"


@pytest.mark.parametrize("transposed", [False, True])
def test_process_module_reads_tep_files_either_way_round(transposed: bool) -> None:
    config = active_catalog().get("process")
    frame = load_module_csv(config, _tep_text(60, 52, transposed), "d00.dat")
    assert frame.values.shape == (60, 52)
    assert frame.values.iloc[1, 0] == pytest.approx(52 / 7, rel=1e-6)
    assert frame.values.index[1] - frame.values.index[0] == np.timedelta64(3, "m")
    assert frame.labels is None


def test_tep_file_with_the_wrong_width_is_refused() -> None:
    with pytest.raises(DataFileError, match="expected 52 fields"):
        load_module_csv(active_catalog().get("process"), _tep_text(60, 50), "d01.dat")


def test_builtin_modules_carry_the_alarm_rules_the_benchmarks_chose() -> None:
    """docs/benchmarks.md, "Defaults, and why": chosen on tuning data, applied by train and live scoring."""
    catalog = load_catalog(None)
    chosen = {
        config.name: (config.alarm.rule, config.alarm.threshold, config.alarm.quantile) for config in catalog
    }
    assert chosen == {
        "energy": ("none", "quantile", 0.99),
        "machine": ("cusum:0.99", "quantile", 0.99),
        "cyber": ("ewma:0.3", "quantile", 0.99),
        "process": ("cusum:0.99", "quantile", 0.99),
    }


@pytest.mark.parametrize(
    ("alarm", "message"),
    [
        ("{rule: 'ewma:fast'}", "alarm rule part 'ewma:fast'"),
        ("{rule: 'cusum+gap:12'}", "cannot be applied live"),
        ("{threshold: budget, alarms_per_day: -1}", "greater than or equal to 0"),
    ],
)
def test_a_bad_alarm_setting_names_the_field(tmp_path: Path, alarm: str, message: str) -> None:
    path = _write(tmp_path, "valve", VALVE_YAML + f"alarm: {alarm}\n")
    with pytest.raises(ModuleConfigError) as caught:
        read_module_config(path)
    assert caught.value.field is not None and caught.value.field.startswith("alarm.")
    assert message in str(caught.value)


def test_an_alarm_rule_and_budget_read_from_yaml_in_their_written_form(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "valve",
        VALVE_YAML + "alarm: {rule: '2of3+EWMA:0.20', threshold: budget, alarms_per_day: 3}\n",
    )
    alarm = read_module_config(path).alarm
    assert alarm.rule == "ewma:0.2+2of3"
    assert alarm.params() == {"alarms_per_day": 3.0}
