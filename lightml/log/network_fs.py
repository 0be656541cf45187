"""The guard against writing a SQLite registry on a network filesystem.

SQLite's WAL mode keeps its lock and index in a memory-mapped ``-shm`` file that only
processes on one host share; on NFS, SMB, Lustre, GPFS, BeeGFS or a FUSE network mount,
writers on two machines each believe they hold the write lock and the registry can be
corrupted (SQLite's own WAL documentation: "WAL does not work over a network
filesystem"). So a SQLite registry is refused *for writing* there (``refuse_writing``),
with the safe options in the message: a PostgreSQL registry, or a registry on a local disk
that ``lightml watch`` fills from the shared results folder. Reading is never refused.
The override (``LIGHTML_ALLOW_NETWORK_FS=1``, or ``allow_network_filesystem=True`` on a
handle or ``init_registry``) is for a user who knows only one machine ever writes.

How the filesystem is found: from the mount table, not from ``statfs``. On Linux,
``statfs``'s ``f_type`` magic (NFS 0x6969, SMB 0x517B, CIFS 0xFF534D42, SMB2
0xFE534D42, Lustre 0x0BD00BD0, GPFS 0x47504653, BeeGFS 0x19830326, FUSE 0x65735546)
has two drawbacks here: every FUSE filesystem has the same magic, so sshfs or gcsfuse
cannot be told from a local squashfuse or an AppImage; and Python has no ``os.statfs``,
so it would take ctypes and a ``struct statfs`` whose layout differs between
architectures. ``/proc/self/mountinfo`` names the same superblock's type ("nfs4",
"lustre", "fuse.sshfs") and the mount's source, needs only text parsing, and answers for
this process's mount namespace; the registry's real path (symlinks resolved) belongs to
the longest mount point that is a prefix of it (the last one listed when several are
stacked on one point). On macOS and the BSDs, ``mount``'s output gives the same table
("server:/x on /mnt (nfs, ...)"). Elsewhere (Windows) nothing is detected: the type is
"unknown" and nothing is refused.

``probe`` is what the guard asks; tests replace it (``probe_replaced``) to put a
registry "on NFS" without an NFS server.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lightml.errors import NetworkFilesystemError

if TYPE_CHECKING:
    from lightml.log.engine import StorageEngine

ALLOW_ENV = "LIGHTML_ALLOW_NETWORK_FS"
_ALLOW_VALUES = {"1", "true", "yes", "on"}

# The filesystem types (as the mount table names them) that machines share over a network,
# in one place. Shared-disk cluster filesystems (gfs2, ocfs2) are here too: several hosts,
# no shared memory for the -shm file. Left out on purpose: 9p and virtiofs (a virtual
# machine's window on its own host, e.g. WSL2's /mnt/c: one host), and tmpfs/overlay/...
NETWORK_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afpfs", "webdav", "davfs",
    "afs", "coda", "ceph", "lustre", "gpfs", "beegfs", "fhgfs", "glusterfs",
    "gfs2", "ocfs2", "orangefs", "pvfs2", "panfs", "wekafs",
})
# FUSE programs that reach another machine: "fuse.<program>" in the mount table (or the
# program as the source of a plain "fuse" mount). Any other FUSE mount is taken as local
# (squashfuse, bindfs, encfs, gocryptfs, lxcfs, portal, gvfsd-fuse, AppImages ...).
NETWORK_FUSE = frozenset({
    "sshfs", "s3fs", "gcsfuse", "glusterfs", "beegfs", "ceph-fuse", "rclone", "goofys",
    "juicefs", "mfs", "lizardfs", "blobfuse", "blobfuse2", "davfs", "curlftpfs", "smbnetfs",
    "seaweedfs", "mountpoint-s3", "quobyte", "alluxio-fuse",
})
_FUSE_TYPES = frozenset({"fuse", "fuseblk", "macfuse", "osxfuse"})
# "host:/path", "user@host:" (sshfs, NFS-style sources): a remote machine's folder.
_REMOTE_SOURCE = re.compile(r"^[^/\s]+:")


@dataclass(frozen=True)
class Mount:
    """One line of the mount table."""

    point: str      # where it is mounted
    type_name: str  # "ext4", "nfs4", "fuse.sshfs"
    source: str     # "/dev/sda1", "filer:/export", "user@host:/data"


@dataclass(frozen=True)
class FilesystemInfo:
    """What filesystem a path is on, as the guard needs it."""

    type_name: str          # as the mount table names it; "unknown" when it could not be told
    is_network: bool
    mount_point: str = ""   # the mount the path belongs to ("" when unknown)


UNKNOWN = FilesystemInfo("unknown", False)


def is_network(type_name: str, source: str = "") -> bool:
    """Is a filesystem of this type (mounted from ``source``) shared between machines?"""
    kind = type_name.lower()
    if kind in NETWORK_TYPES:
        return True
    if kind.startswith("fuse."):
        return kind.removeprefix("fuse.") in NETWORK_FUSE
    if kind in _FUSE_TYPES:  # the type does not say which program: the source may
        program = source.split("#", 1)[0].lower()
        return program in NETWORK_FUSE or _REMOTE_SOURCE.match(source) is not None
    return False


def _unescape(field: str) -> str:
    """mountinfo writes a space, tab, newline or backslash in a path as an octal escape."""
    if "\\" not in field:
        return field
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of ``/proc/<pid>/mountinfo`` text (see proc(5)): ``id parent dev root
    POINT options [optional...] - TYPE SOURCE superoptions`` per line."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
            mounts.append(Mount(_unescape(fields[4]), fields[sep + 1], _unescape(fields[sep + 2])))
        except (ValueError, IndexError):  # not a mount line: nothing to learn from it
            continue
    return mounts


_MOUNT_LINE = re.compile(r"^(?P<source>.+?) on (?P<point>.+) \((?P<type>[^,()]+)[,)]")


def parse_mount_output(text: str) -> list[Mount]:
    """The mounts of macOS / BSD ``mount`` output: ``SOURCE on POINT (TYPE, options)``."""
    mounts = []
    for line in text.splitlines():
        found = _MOUNT_LINE.match(line)
        if found:
            mounts.append(Mount(found["point"], found["type"].strip(), found["source"]))
    return mounts


def filesystem_in(path: str | os.PathLike, mounts: Sequence[Mount]) -> FilesystemInfo:
    """The filesystem of the absolute, resolved ``path`` in the mount table ``mounts``: the
    longest mount point containing it; of several on one point, the last (it hides the
    others)."""
    text = os.fspath(path)
    best: tuple[int, int, Mount] | None = None
    for index, mount in enumerate(mounts):
        point = mount.point.rstrip("/") or "/"
        if point == "/" or text == point or text.startswith(point + "/"):
            key = (len(point), index, mount)
            if best is None or key[:2] > best[:2]:
                best = key
    if best is None:
        return UNKNOWN
    mount = best[2]
    return FilesystemInfo(mount.type_name, is_network(mount.type_name, mount.source), mount.point)


def mount_table() -> list[Mount] | None:
    """This process's mount table, or None where it cannot be read (see the module's doc)."""
    if sys.platform.startswith("linux"):
        try:
            return parse_mountinfo(Path("/proc/self/mountinfo").read_text(errors="surrogateescape"))
        except OSError:
            return None
    if sys.platform == "darwin" or "bsd" in sys.platform:
        import subprocess  # (only here: not worth importing on Linux)

        try:
            done = subprocess.run(["mount"], capture_output=True, text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return parse_mount_output(done.stdout)
    return None


def filesystem_of(path: str | os.PathLike) -> FilesystemInfo:
    """The filesystem ``path`` is on, on this machine (``UNKNOWN`` where it cannot be told)."""
    mounts = mount_table()
    return UNKNOWN if mounts is None else filesystem_in(path, mounts)


# What the guard asks; replaced in tests (``probe_replaced``).
probe: Callable[[Path], FilesystemInfo] = filesystem_of


@contextlib.contextmanager
def probe_replaced(fake: Callable[[Path], FilesystemInfo]) -> Iterator[None]:
    """Within the block, the guard asks ``fake(path)`` (an existing, resolved path) instead of
    this machine's mount table: how tests put a registry on "NFS" (for this process only)."""
    global probe
    previous, probe = probe, fake
    try:
        yield
    finally:
        probe = previous


def probe_with_mounts(mounts: Sequence[Mount]) -> Callable[[Path], FilesystemInfo]:
    """A probe that reads ``mounts`` instead of this machine's table (for ``probe_replaced``)."""
    return functools.partial(filesystem_in, mounts=list(mounts))


def allowed_by_environment() -> bool:
    """Has the user allowed writing on a network filesystem (``LIGHTML_ALLOW_NETWORK_FS=1``)?"""
    return os.environ.get(ALLOW_ENV, "").strip().lower() in _ALLOW_VALUES


def _nearest_existing(path: Path) -> Path:
    """The file, or the nearest folder above it that exists (a registry not created yet)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def refuse_writing(engine: StorageEngine, *, allow: bool = False) -> None:
    """Raise ``NetworkFilesystemError`` if ``engine`` is a SQLite registry on a network
    filesystem, unless ``allow`` or ``LIGHTML_ALLOW_NETWORK_FS`` says a single machine writes.
    Other engines (PostgreSQL) are never refused. Call it before anything is written."""
    from lightml.log.sqlite_engine import SQLiteEngine

    if allow or not isinstance(engine, SQLiteEngine) or allowed_by_environment():
        return
    # The real file: a symlink to a shared disk is on the shared disk (SQLite follows it).
    where = _nearest_existing(Path(os.path.realpath(engine.path)))
    info = probe(where)
    if not info.is_network:
        return
    mounted = f" mounted at {info.mount_point}" if info.mount_point else ""
    raise NetworkFilesystemError(
        f"refusing to write the SQLite registry {os.path.abspath(engine.path)}: it is on a network filesystem "
        f"({info.type_name}{mounted}), where writers on different machines can corrupt it (SQLite's WAL "
        "needs every writer on one host). Use a PostgreSQL registry (--db postgresql://user@host/db), "
        "or keep the registry on a local disk and import the shared results folder into it with "
        "lightml watch --db LOCAL.db --path SHARED_FOLDER; if only one machine ever writes it, set "
        f"{ALLOW_ENV}=1 (Python: allow_network_filesystem=True)")
