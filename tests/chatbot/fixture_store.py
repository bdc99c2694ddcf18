"""A small, hand-made anomaly store for the chatbot's tests, evaluation set and benchmark.

Three modules over ten days, with a fixed "now" of Thursday 2024-03-14 12:00 (the week began on Monday
2024-03-11).
The expected facts in questions.yaml are worked out by hand from the table below, not computed by the chatbot.
"""

from datetime import datetime, timedelta

from plantwatch.domain.anomaly import Anomaly, FeatureContribution, severity_for
from plantwatch.domain.modules import Module
from tests.fakes import InMemoryAnomalyRepository

NOW = datetime(2024, 3, 14, 12, 0)

FEATURE_NAMES: dict[Module, list[str]] = {
    Module.ENERGY: ["usage_kwh", "power_kw", "voltage_v", "temperature_c"],
    Module.MACHINE: ["vibration_mm_s", "temperature_c", "spindle_rpm", "current_a"],
    Module.CYBER: ["FIT101", "LIT101", "MV101", "P101", "P102", "AIT201"],
}

_MODELS = {
    Module.ENERGY: ("lstm_ae", "v3", 1.0, "building-7"),
    Module.MACHINE: ("pca", "v1", 2.0, "press-2"),
    Module.CYBER: ("lstm_ae", "v2", 0.5, "swat"),
}

# name: (module, window_end, score, root cause as (feature, contribution, observed, expected), largest first).
# Severity follows score/threshold (energy 1.0, machine 2.0, cyber 0.5): >= 4 critical, >= 2 high,
# >= 1.3 medium, else low.
ROWS: dict[str, tuple[Module, str, float, list[tuple[str, float, float, float]]]] = {
    "E1": (
        Module.ENERGY,
        "2024-03-14 10:15",
        4.5,
        [("usage_kwh", 9.0, 182.0, 96.5), ("power_kw", 3.1, 40.2, 31.0)],
    ),
    "E2": (
        Module.ENERGY,
        "2024-03-14 08:00",
        2.4,
        [("usage_kwh", 5.2, 150.0, 101.0), ("voltage_v", 2.0, 226.0, 230.0)],
    ),
    "E3": (
        Module.ENERGY,
        "2024-03-13 22:30",
        1.5,
        [("power_kw", 4.4, 55.0, 30.0), ("usage_kwh", 1.9, 120.0, 99.0)],
    ),
    "E4": (Module.ENERGY, "2024-03-13 09:00", 1.1, [("voltage_v", 3.3, 212.0, 230.0)]),
    "E5": (Module.ENERGY, "2024-03-12 14:00", 1.4, [("usage_kwh", 2.8, 140.0, 100.0)]),
    "E7": (Module.ENERGY, "2024-03-12 20:00", 1.2, [("usage_kwh", 2.2, 131.0, 100.0)]),
    "E6": (Module.ENERGY, "2024-03-08 11:00", 2.0, [("temperature_c", 6.1, 31.5, 21.0)]),
    "M1": (
        Module.MACHINE,
        "2024-03-14 11:00",
        9.0,
        [("vibration_mm_s", 12.4, 14.8, 2.1), ("temperature_c", 3.5, 78.0, 61.0)],
    ),
    "M2": (Module.MACHINE, "2024-03-14 06:45", 3.0, [("vibration_mm_s", 4.1, 7.9, 2.2)]),
    "M3": (
        Module.MACHINE,
        "2024-03-13 15:20",
        5.0,
        [("temperature_c", 7.7, 92.0, 60.0), ("vibration_mm_s", 2.4, 4.5, 2.0)],
    ),
    "M4": (Module.MACHINE, "2024-03-13 07:10", 2.2, [("current_a", 2.6, 18.5, 14.0)]),
    "M5": (Module.MACHINE, "2024-03-11 09:30", 4.2, [("vibration_mm_s", 6.6, 9.4, 2.0)]),
    "M6": (Module.MACHINE, "2024-03-06 10:00", 2.8, [("spindle_rpm", 3.9, 1180.0, 1500.0)]),
    "C1": (Module.CYBER, "2024-03-14 10:32", 2.5, [("P101", 14.2, 0.0, 1.0), ("LIT101", 6.3, 1010.0, 800.0)]),
    "C2": (
        Module.CYBER,
        "2024-03-14 09:05",
        1.2,
        [("LIT101", 8.1, 1100.0, 810.0), ("FIT101", 2.2, 0.0, 2.5)],
    ),
    "C3": (Module.CYBER, "2024-03-14 01:40", 0.7, [("FIT101", 3.0, 0.4, 2.5)]),
    "C4": (Module.CYBER, "2024-03-13 10:32", 0.6, [("MV101", 2.5, 0.0, 1.0)]),
    "C5": (Module.CYBER, "2024-03-13 18:00", 1.0, [("P101", 5.5, 0.0, 1.0)]),
    "C6": (Module.CYBER, "2024-03-12 03:00", 0.8, [("AIT201", 3.6, 9.1, 8.4), ("P101", 1.8, 1.0, 1.0)]),
    "C7": (Module.CYBER, "2024-03-09 12:00", 0.9, [("P102", 4.0, 1.0, 0.0)]),
}


def build_anomalies() -> dict[str, Anomaly]:
    anomalies = {}
    for name, (module, end_text, score, causes) in ROWS.items():
        model_name, version, threshold, source = _MODELS[module]
        end = datetime.fromisoformat(end_text)
        anomalies[name] = Anomaly(
            module=module,
            source=source,
            window_start=end - timedelta(minutes=30),
            window_end=end,
            score=score,
            threshold=threshold,
            root_cause=tuple(FeatureContribution(f, c, o, e) for f, c, o, e in causes),
            model_name=model_name,
            model_version=version,
            detected_at=end + timedelta(seconds=5),
            severity=severity_for(score, threshold),
        )
    return anomalies


def build_store() -> tuple[InMemoryAnomalyRepository, dict[str, Anomaly]]:
    anomalies = build_anomalies()
    repository = InMemoryAnomalyRepository()
    repository.add_many(list(anomalies.values()))
    return repository, anomalies
