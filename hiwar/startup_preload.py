"""Imported by Ray in every worker process as it starts (``preload_python_modules``): warms torch and transformers.

Importing this module is its whole job; see :mod:`hiwar.startup`. A failed warm-up is logged and never stops the
worker (Ray only tolerates an ImportError from a preload module): its actor then imports what it needs itself.
"""

import logging

from hiwar.startup import warm_imports

try:
    warm_imports()
except Exception:  # noqa: BLE001 - a worker must start even when its warm-up cannot run
    logging.getLogger(__name__).exception("hiwar worker warm-up failed; actors will import on demand")
