"""hiwar (حوار): Arabic multi-turn dialogue models end to end, on Ray."""

from hiwar.import_cache import install as _install_import_cache

__version__ = "0.1.0"

# Before anything imports transformers: its import-time scans are answered from a cache (hiwar/import_cache.py).
_install_import_cache()
