"""Two results that ``import transformers`` recomputes in every process, kept on disk instead.

Every process that imports transformers (the CLI, each engine, scorer and encoder actor, each Ray Train worker)
does two pieces of work whose answer depends only on what is installed:

- ``transformers.utils.import_utils`` calls ``importlib.metadata.packages_distributions()`` at import: it parses
  the metadata of every installed distribution and the ``RECORD`` file of each without ``top_level.txt``
  (16,400 lines here);
- ``transformers/__init__`` calls ``define_import_structure(.../models, prefix="models")``, which reads all of its
  ~1,600 model files to find their ``__all__`` lists, so that its lazy module knows which file holds which class;
  ``transformers/models/__init__`` asks again for the same folder without the prefix, and transformers'
  ``lru_cache`` (128 entries, for 524 folders) has forgotten most of it by then.

Together they were 1.1-1.9 s of a 7-10 s actor start-up on these 2 cores (``benchmarks/bench_startup.py``). This
module keeps both answers as JSON files under :func:`cache_dir`, each with a key that changes whenever the answer
could: for the distributions, the ``sys.path`` folders that hold distributions with their modification times and
the distributions' names (a name carries its version); for the import structure, the size and modification time of
every model file and of ``import_utils.py`` itself. A missing, stale or unreadable file means the work is done as
before and the file rewritten; nothing here can change what transformers imports, only how fast it learns it.

:func:`install` (called by ``hiwar/__init__``) puts a finder first on ``sys.meta_path`` that wraps only the loader
of ``transformers.utils.import_utils``: it answers ``packages_distributions`` from the cache while that module runs,
then gives the module a caching ``define_import_structure`` before ``transformers/__init__`` imports the name.
``HIWAR_IMPORT_CACHE=0`` turns it off.
"""

from __future__ import annotations

# Only os and sys at the top: ``import hiwar`` runs :func:`install`, and ``hiwar --help`` must stay instant
# (importlib.metadata, hashlib, json and pathlib cost it 90 ms here); the rest is imported when transformers is.
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from importlib.machinery import ModuleSpec
    from pathlib import Path

SWITCH_ENV = "HIWAR_IMPORT_CACHE"  # "0" turns the cache off
DIR_ENV = "HIWAR_CACHE_DIR"  # where hiwar keeps caches (default: $XDG_CACHE_HOME/hiwar, else ~/.cache/hiwar)
TARGET = "transformers.utils.import_utils"
STRUCTURE_PREFIX = "models"  # the package whose import structure is worth caching: all ~1,600 model files

hits: dict[str, int] = {"packages_distributions": 0, "import_structure": 0}  # cache answers in this process


def enabled() -> bool:
    """Whether the cache is on (``HIWAR_IMPORT_CACHE`` is not 0/false/off/no)."""
    return os.environ.get(SWITCH_ENV, "1").strip().lower() not in ("0", "false", "off", "no")


def cache_dir() -> Path:
    """``$HIWAR_CACHE_DIR/imports``, else ``$XDG_CACHE_HOME/hiwar/imports``, else ``~/.cache/hiwar/imports``."""
    from pathlib import Path

    root = os.environ.get(DIR_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "hiwar"
    )
    return Path(root) / "imports"


def install() -> bool:
    """Put the finder first on ``sys.meta_path``, once; False when switched off or transformers is already in."""
    if not enabled() or TARGET in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _Finder())
    return True


def cached(name: str, identity: Any, key: Any, compute: Callable[[], Any], encode: Callable, decode: Callable) -> Any:
    """``compute()``, or its answer read back from the cache file of (``name``, ``identity``) when that file was
    written under the same ``key``. A file that cannot be read or decoded counts as absent; one that cannot be
    written is skipped (the answer is still returned)."""
    import hashlib
    import json
    import logging

    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{digest}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["key"] == key:
            value = decode(data["value"])
            hits[name] = hits.get(name, 0) + 1
            return value
    except Exception as err:  # noqa: BLE001 - absent, stale or damaged: compute it, as without a cache
        logging.getLogger(__name__).debug("import cache %s: %s", path, err)
    value = compute()
    try:
        encoded = encode(value)
    except Exception as err:  # noqa: BLE001 - an answer of a shape this cache does not know: use it, keep nothing
        logging.getLogger(__name__).debug("import cache %s: not kept (%s)", path, err)
        return value
    _write(path, {"key": key, "value": encoded})
    return value


def _write(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON atomically (:mod:`hiwar.atomic`), so a reader never sees half a file."""
    import json
    import logging

    from hiwar.atomic import write_text

    try:
        write_text(path, json.dumps(data))
    except (OSError, TypeError, ValueError) as err:  # a read-only home, or a value JSON cannot hold: no cache
        logging.getLogger(__name__).debug("import cache not written to %s: %s", path, err)


def distribution_folders() -> list[list[Any]]:
    """The ``sys.path`` entries that hold installed distributions (``*.dist-info``, ``*.egg-info``), each with its
    modification time and the sorted names of those distributions: the key of ``packages_distributions``."""
    out: list[list[Any]] = []
    for entry in sys.path:
        folder = os.path.abspath(entry or os.getcwd())
        try:
            with os.scandir(folder) as it:
                names = sorted(e.name for e in it if e.name.endswith((".dist-info", ".egg-info")))
            if names:
                out.append([folder, os.stat(folder).st_mtime_ns, names])
        except OSError:  # not a folder (a zip, or gone): importlib.metadata finds no dist-info there either
            continue
    return out


def packages_distributions(real: Callable[[], dict[str, list[str]]]) -> dict[str, list[str]]:
    """``importlib.metadata.packages_distributions()`` (``real``), answered from the cache when nothing installed
    changed."""
    folders = distribution_folders()
    identity = [folder for folder, _, _ in folders]

    def decode(value: Any) -> dict[str, list[str]]:
        return {str(k): [str(d) for d in v] for k, v in value.items()}

    return cached("packages_distributions", identity, folders, real, dict, decode)


def tree_fingerprint(folder: Path, *also: Path) -> str:
    """A digest of the relative path, size and modification time of every ``.py`` file under ``folder`` (and of
    each file in ``also``): any change to the code that defines an import structure changes it."""
    import hashlib

    digest = hashlib.sha256()
    stack = [str(folder)]
    while stack:
        top = stack.pop()
        with os.scandir(top) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
            elif e.name.endswith(".py"):
                st = e.stat()
                digest.update(f"{os.path.relpath(e.path, folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    for path in also:
        st = os.stat(path)
        digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def caching_define_import_structure(real: Callable[..., Any], code: Path) -> Callable[..., Any]:
    """``define_import_structure`` (``real``) that answers the calls about the whole ``models`` package from the
    cache: ``transformers/__init__`` asks with ``prefix="models"``, ``transformers/models/__init__`` with its own
    file. A call about one model's folder (a few files) goes to ``real``. ``code`` is ``import_utils.py``, whose
    rules shape the answer.

    Within one process the answers are kept in memory too: transformers runs its ``__init__`` a second time (as a
    separate module, ``direct_transformers_import``) when ``processing_utils`` is imported, and its own
    ``lru_cache`` answered that call before."""
    from pathlib import Path

    models = Path(os.path.realpath(code.parent.parent / STRUCTURE_PREFIX))
    seen: dict[str | None, list[list[Any]]] = {}  # prefix -> encoded answer, before transformers adds to it
    fingerprint: list[str] = []  # the models tree's, once per process

    def define_import_structure(module_path: Any, prefix: str | None = None) -> Any:
        folder = Path(os.path.realpath(module_path))
        if (folder if folder.is_dir() else folder.parent) != models:
            return real(module_path, prefix=prefix)
        if prefix in seen:
            hits["import_structure"] += 1
            return _decode_structure(seen[prefix])
        try:
            fingerprint[:] = fingerprint or [tree_fingerprint(models, code)]
        except OSError:
            return real(module_path, prefix=prefix)
        value = cached(
            "import_structure",
            [str(models), prefix],
            fingerprint[0],
            lambda: real(module_path, prefix=prefix),
            _encode_structure,
            _decode_structure,
        )
        seen[prefix] = _encode_structure(value)
        return value

    define_import_structure.__wrapped__ = real  # type: ignore[attr-defined]
    return define_import_structure


def _encode_structure(structure: dict[frozenset, dict[str, set[str]]]) -> list[list[Any]]:
    return [
        [sorted(backends), {mod: sorted(names) for mod, names in mods.items()}] for backends, mods in structure.items()
    ]


def _decode_structure(value: list[list[Any]]) -> dict[frozenset, dict[str, set[str]]]:
    # A fresh object on every call: transformers/__init__ adds its own names to the structure it is given.
    return {frozenset(map(str, b)): {str(m): set(map(str, n)) for m, n in mods.items()} for b, mods in value}


class _Finder:
    """A ``sys.meta_path`` finder (the protocol is one method: no importlib.abc base, which ``import hiwar`` would
    pay for): finds ``transformers.utils.import_utils`` as the other finders do, then wraps its loader."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if fullname != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module") and spec.origin:
                    from pathlib import Path

                    spec.loader = _Loader(spec.loader, Path(spec.origin))
                return spec
        return None


class _Loader:
    """The real loader of ``import_utils``, with the two cached answers put in around its ``exec_module``."""

    def __init__(self, real: Any, origin: Path) -> None:
        self._real, self._origin = real, origin

    def __getattr__(self, name: str) -> Any:  # get_source, get_data, ...: the real loader's
        return getattr(self._real, name)

    def create_module(self, spec: ModuleSpec) -> Any:
        return self._real.create_module(spec)

    def exec_module(self, module: Any) -> None:
        import importlib.metadata

        real_pd = importlib.metadata.packages_distributions
        # Only while this module runs: it is the caller that pays, and nobody else sees a changed stdlib.
        importlib.metadata.packages_distributions = lambda: packages_distributions(real_pd)
        try:
            self._real.exec_module(module)
        finally:
            importlib.metadata.packages_distributions = real_pd
        real_define = getattr(module, "define_import_structure", None)
        if callable(real_define):  # a transformers without it has nothing to cache
            module.define_import_structure = caching_define_import_structure(real_define, self._origin)
