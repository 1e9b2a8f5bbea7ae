"""Checkpoints: ``save(obj, path)`` / ``load(path)`` for nested state dicts, as ``.npz``.

Format: an uncompressed NumPy ``.npz`` archive holding every array as
``a0, a1, ...`` plus ``__structure__``, a JSON description of the nesting
(dicts with str or int keys, lists, tuples, numbers, strings, booleans, None)
in which each array appears as ``{"__array__": i}``. Nothing is pickled, and
:func:`load` reads with ``allow_pickle=False``.

Writing is atomic: the archive goes to a temporary file in the destination's
folder, is flushed to disk, then renamed over ``path`` (``os.replace``). A crash
at any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

__all__ = ["save", "load", "atomic_write", "CheckpointError"]

_STRUCTURE = "__structure__"


class CheckpointError(ValueError):
    """A file that is not a readable minitorchseg checkpoint."""


def _encode(obj: Any, arrays: list[np.ndarray]) -> Any:
    from .tensor import Tensor

    if isinstance(obj, Tensor):
        obj = obj.numpy()
    if hasattr(obj, "__cuda_array_interface__") and hasattr(obj, "get"):
        obj = obj.get()
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError("save: object arrays cannot be saved without pickle")
        arrays.append(obj)
        return {"__array__": len(arrays) - 1}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"save: dict keys must be str or int, got {key!r}")
            items.append([key, _encode(value, arrays)])
        return {"__dict__": items}
    if isinstance(obj, (list, tuple)):
        return {"__tuple__" if isinstance(obj, tuple) else "__list__": [_encode(v, arrays) for v in obj]}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"save: cannot save an object of type {type(obj).__name__}")


def _decode(node: Any, archive) -> Any:
    if isinstance(node, dict):
        if "__array__" in node:
            return archive[f"a{node['__array__']}"]
        if "__dict__" in node:
            return {key: _decode(value, archive) for key, value in node["__dict__"]}
        if "__list__" in node:
            return [_decode(v, archive) for v in node["__list__"]]
        if "__tuple__" in node:
            return tuple(_decode(v, archive) for v in node["__tuple__"])
        raise CheckpointError(f"unknown node in checkpoint structure: {sorted(node)}")
    return node


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(fileobj)`` on a temporary file in ``path``'s folder (binary mode), then rename it to ``path``.

    The file is flushed and ``fsync``-ed before ``os.replace``, so a crash at any
    moment leaves the previous file or the new one, never half of one; on an
    error the temporary file is removed and the error re-raised. The new file gets
    the usual permissions (``0o666`` less the umask; ``mkstemp`` alone makes 0600).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` (nested dicts/lists of arrays, Tensors and scalars) to ``path`` atomically."""
    arrays: list[np.ndarray] = []
    structure = json.dumps(_encode(obj, arrays))
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: folder {folder!r} does not exist")
    payload = {f"a{i}": a for i, a in enumerate(arrays)}
    payload[_STRUCTURE] = np.frombuffer(structure.encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda fh: np.savez(fh, **payload))


def load(path: str | os.PathLike) -> Any:
    """Read a checkpoint written by :func:`save` (``allow_pickle=False``).

    Raises FileNotFoundError for a missing file and :class:`CheckpointError`
    (a ValueError) for a corrupt, truncated or foreign file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no checkpoint at {path!r}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":  # every .npz is a zip archive; np.load would report other files as pickles
        raise CheckpointError(f"load: {path!r} is not a minitorchseg checkpoint (not a NumPy .npz archive: another "
                              "kind of file, or one corrupt or truncated at its start)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not hasattr(archive, "files") or _STRUCTURE not in archive.files:
                raise CheckpointError(f"load: {path!r} is not a minitorchseg checkpoint (no {_STRUCTURE} entry)")
            structure = json.loads(bytes(archive[_STRUCTURE]).decode("utf-8"))
            return _decode(structure, {name: archive[name] for name in archive.files if name != _STRUCTURE})
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"load: {path!r} is corrupt or truncated and cannot be read as a checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
