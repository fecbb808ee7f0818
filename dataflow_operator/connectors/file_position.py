"""What a file source's checkpoint is a position in, and whether it applies to the file there now.

A byte offset means nothing without its file: after the spec's path changes, or the file at a path
is replaced, the old offset would skip data silently or start mid-line. So the checkpoint records
the file's path, device and inode, and a fingerprint (SHA-256 of its first bytes, up to
:data:`FINGERPRINT_BYTES`, with the count used). On start the position is applied only to a file at
the same path whose first bytes still match; a copied rotation (new inode, same content) resumes.
A fingerprint that differs means other content even when the inode is the same: file systems reuse
the inode number of a deleted file, and an in-place rewrite keeps it.

Checkpoints written before identities were recorded are a bare offset; they are still applied when
the file is at least that long (:attr:`FilePosition.identity` is ``None``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

FINGERPRINT_BYTES = 4096


def _fingerprint(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


@dataclass(frozen=True, slots=True)
class FileIdentity:
    path: str  # absolute, as the spec names it (symlinks are not resolved: the path is the identity)
    device: int
    inode: int
    fingerprint: str
    fingerprint_length: int
    # Everything of the checkpoint text but the offset: acks may save a position per message.
    _text_head: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        identity = json.dumps({"path": self.path, "device": self.device, "inode": self.inode,
                               "fingerprint": self.fingerprint, "fingerprintLength": self.fingerprint_length})
        object.__setattr__(self, "_text_head", identity[:-1] + ', "offset": ')

    @classmethod
    def of(cls, path: str, fd: int) -> FileIdentity:
        """The identity of the regular file open as ``fd``, fingerprinted on what it holds now."""
        status = os.fstat(fd)
        head = os.pread(fd, FINGERPRINT_BYTES, 0)
        return cls(os.path.abspath(path), status.st_dev, status.st_ino, _fingerprint(head), len(head))

    def same_content(self, fd: int) -> bool:
        """Whether the file open as ``fd`` starts with the bytes this identity was fingerprinted on."""
        head = os.pread(fd, self.fingerprint_length, 0)
        return len(head) == self.fingerprint_length and _fingerprint(head) == self.fingerprint

    def describe(self) -> str:
        return f"{self.path} (device {self.device}, inode {self.inode})"

    def checkpoint(self, offset: int) -> str:
        return f"{self._text_head}{offset}}}"


@dataclass(frozen=True, slots=True)
class FilePosition:
    identity: FileIdentity | None  # None: a legacy checkpoint that holds a bare offset
    offset: int


def _natural(data: dict[str, object], key: str, limit: int | None = None) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (limit is not None and value > limit):
        bound = f" up to {limit}" if limit is not None else ""
        raise ValueError(f"{key!r} must be a whole number from 0{bound}, not {value!r}")
    return value


def parse_position(text: str) -> FilePosition:
    """The position a checkpoint holds; :class:`ValueError` naming what is wrong for anything else."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply to be a file position") from None
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if isinstance(data, int) and not isinstance(data, bool):
        return FilePosition(None, _natural({"offset": data}, "offset"))
    if not isinstance(data, dict):
        raise ValueError(f"expected an object with path, device, inode, fingerprint and offset, "
                         f"not {type(data).__name__}")
    path, fingerprint = data.get("path"), data.get("fingerprint")
    if not isinstance(path, str) or not path:
        raise ValueError(f"'path' must be a file path, not {path!r}")
    if not isinstance(fingerprint, str) or len(fingerprint) != 64 or fingerprint.strip("0123456789abcdef"):
        raise ValueError(f"'fingerprint' must be a SHA-256 in hex, not {fingerprint!r}")
    identity = FileIdentity(path, _natural(data, "device"), _natural(data, "inode"), fingerprint,
                            _natural(data, "fingerprintLength", FINGERPRINT_BYTES))
    return FilePosition(identity, _natural(data, "offset"))


def mismatch(position: FilePosition, current: FileIdentity, fd: int, size: int) -> str | None:
    """Why ``position`` does not apply to the file open as ``fd`` (``current``, ``size`` bytes long),
    or ``None`` when it does."""
    saved = position.identity
    if saved is not None:
        if saved.path != current.path:
            return "the checkpoint is for another path"
        if size < saved.fingerprint_length or not saved.same_content(fd):
            return "the file at this path starts with other content (replaced)"
    if size < position.offset:
        return "the file is shorter than the checkpoint's offset (truncated or replaced)"
    # Positions are taken only after a newline; at end of file there is no line to start inside of.
    if 0 < position.offset < size and os.pread(fd, 1, position.offset - 1) != b"\n":
        return "the offset is not at the start of a line"
    return None
