"""The chatbot's vocabulary covers every configured module: its name and its feature names."""

from datetime import datetime
from pathlib import Path

from plantwatch.adapters.modules import activate_catalog, load_catalog
from plantwatch.domain.modules import Module
from plantwatch.services.chatbot import SlotParser
from tests.chatbot.fixture_store import FEATURE_NAMES

NOW = datetime(2024, 3, 14, 12, 0)
VALVE = """
name: valve
features: [{name: flow}, {name: valve_position}]
timestamp: {column: t, formats: ["%Y-%m-%d %H:%M"]}
"""


def test_a_configured_module_is_known_by_name_and_by_its_features(tmp_path: Path) -> None:
    (tmp_path / "valve.yaml").write_text(VALVE)
    activate_catalog(load_catalog(tmp_path))
    valve = Module("valve")
    parser = SlotParser({**FEATURE_NAMES, valve: ["flow", "valve_position"]})
    assert parser.parse("what went wrong in the valve module today", NOW).modules == (valve,)
    by_feature = parser.parse("why did valve position jump", NOW)
    assert by_feature.modules == (valve,) and by_feature.features == ("valve_position",)
    # the seed modules' words still work beside it
    assert parser.parse("any energy anomalies", NOW).modules == (Module.ENERGY,)
