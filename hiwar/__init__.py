"""hiwar (حوار): Arabic multi-turn dialogue models end to end, on Ray."""

__version__ = "0.1.0"
