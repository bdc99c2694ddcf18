"""plantwatch: industrial anomaly intelligence (energy, machine, cyber)."""

__version__ = "0.1.0"
