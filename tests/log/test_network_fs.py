"""Which filesystem a registry is on (``lightml.log.network_fs``): the mount table read,
network types told from local ones (FUSE by its program), and the guard's answer for a path.
The handles, ``init_registry`` and the CLI under the guard: tests/api/test_network_fs_override.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lightml.errors import InvalidInputError, NetworkFilesystemError
from lightml.log import network_fs
from lightml.log.network_fs import FilesystemInfo, Mount
from lightml.log.sqlite_engine import SQLiteEngine


@pytest.fixture(autouse=True)
def no_override(monkeypatch) -> None:
    """The tests choose the override themselves, whatever the environment says."""
    monkeypatch.delenv(network_fs.ALLOW_ENV, raising=False)


# /proc/self/mountinfo as an HPC node shows it: optional fields (shared:N), an escaped space,
# NFS and Lustre homes and scratch, two FUSE mounts (one remote, one local), a mount stacked
# on another, and a mount point that is a prefix of another's name but not its folder.
MOUNTINFO = textwrap.dedent(r"""
    22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
    30 22 0:40 / /home rw,relatime shared:5 - nfs4 filer:/export/home rw,vers=4.2
    31 22 0:41 / /scratch rw,relatime - lustre 10.0.0.1@o2ib:/scratch rw
    32 22 0:42 / /mnt/my\040data rw,relatime - fuse.sshfs alice@login:/data rw,user_id=1000
    33 22 7:0 / /opt/tools rw,relatime - fuse.squashfuse squashfuse ro
    34 22 0:43 / /mnt/nfs rw,relatime - nfs filer:/a rw
    35 22 0:44 / /mnt/nfs rw,relatime - tmpfs tmpfs rw
    36 22 0:45 / /mnt/nfs2 rw,relatime - nfs filer:/b rw
    not a mount line
""")


@pytest.mark.parametrize("path, type_name, is_network, point", [
    ("/home/alice/registry/main.db", "nfs4", True, "/home"),
    ("/home", "nfs4", True, "/home"),
    ("/homework/main.db", "ext4", False, "/"),  # /home is not its folder
    ("/scratch/run1", "lustre", True, "/scratch"),
    ("/mnt/my data/reg", "fuse.sshfs", True, "/mnt/my data"),  # the escaped space read back
    ("/opt/tools/bin", "fuse.squashfuse", False, "/opt/tools"),  # a local FUSE mount
    ("/mnt/nfs/x.db", "tmpfs", False, "/mnt/nfs"),  # stacked: the last mount hides the first
    ("/mnt/nfs2/x.db", "nfs", True, "/mnt/nfs2"),
    ("/var/tmp/x.db", "ext4", False, "/"),
])
def test_a_path_belongs_to_the_longest_mount_point_containing_it(path, type_name, is_network, point) -> None:
    mounts = network_fs.parse_mountinfo(MOUNTINFO)
    assert len(mounts) == 8
    assert network_fs.filesystem_in(path, mounts) == FilesystemInfo(type_name, is_network, point)


@pytest.mark.parametrize("type_name, source, expected", [
    ("nfs", "filer:/x", True), ("nfs4", "filer:/x", True), ("cifs", "//srv/share", True),
    ("smb3", "//srv/share", True), ("lustre", "mgs@tcp:/fs", True), ("gpfs", "gpfs0", True),
    ("beegfs", "beegfs_nodev", True), ("ceph", "mon1:/", True), ("gfs2", "/dev/mapper/shared", True),
    ("fuse.sshfs", "u@h:/d", True), ("fuse.glusterfs", "g1:/vol", True), ("fuse.s3fs", "s3fs", True),
    ("fuse.gcsfuse", "my-bucket", True), ("fuse.beegfs", "beegfs", True),
    # a plain "fuse" mount: the source names the program, or a remote machine's folder
    ("fuse", "sshfs#alice@login:/data", True), ("fuse", "alice@login:/data", True), ("fuse", "s3fs", True),
    ("macfuse", "alice@login:/data", True),  # macOS sshfs
    ("smbfs", "//alice@srv/share", True),  # macOS
    # local
    ("ext4", "/dev/sda1", False), ("xfs", "/dev/md0", False), ("btrfs", "/dev/nvme0n1p2", False),
    ("tmpfs", "tmpfs", False), ("overlay", "overlay", False), ("zfs", "tank/home", False),
    ("apfs", "/dev/disk3s1", False),
    ("fuse.squashfuse", "squashfuse", False), ("fuse.gvfsd-fuse", "gvfsd-fuse", False),
    ("fuse.lxcfs", "lxcfs", False), ("fuseblk", "/dev/sdb1", False), ("fuse", "portal", False),
    ("9p", "drvfs", False), ("virtiofs", "hostshare", False),  # a VM's own host: one host
])
def test_network_filesystems_are_told_from_local_ones(type_name, source, expected) -> None:
    assert network_fs.is_network(type_name, source) is expected


def test_the_mount_output_of_macos_and_bsd_gives_the_same_table() -> None:
    output = textwrap.dedent("""\
        /dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)
        //alice@nas._smb._tcp.local/lab on /Volumes/lab (smbfs, nodev, nosuid, mounted by alice)
        filer:/export/home on /System/Volumes/Data/home (nfs, asynchronous)
        alice@login:/data on /Volumes/data (macfuse, nodev, nosuid, synchronous, mounted by alice)
    """)
    mounts = network_fs.parse_mount_output(output)
    assert [(m.point, m.type_name) for m in mounts] == [
        ("/", "apfs"), ("/Volumes/lab", "smbfs"), ("/System/Volumes/Data/home", "nfs"), ("/Volumes/data", "macfuse")]
    assert network_fs.filesystem_in("/Volumes/lab/reg.db", mounts).is_network
    assert network_fs.filesystem_in("/Volumes/data/reg.db", mounts).is_network
    assert not network_fs.filesystem_in("/Users/alice/reg.db", mounts).is_network


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the mount table is /proc/self/mountinfo on Linux")
def test_the_real_probe_finds_the_test_folder_local(tmp_path: Path) -> None:
    info = network_fs.filesystem_of(tmp_path.resolve())
    assert info.type_name != "unknown" and not info.is_network
    point = info.mount_point.rstrip("/")
    assert str(tmp_path.resolve()).startswith(point + "/")


def test_the_real_probe_sees_a_real_mount(tmp_path: Path) -> None:
    """A tmpfs mounted (in a user and mount namespace) on a folder whose name has a space:
    the real probe, in a process inside the namespace, names it and its mount point."""
    folder = tmp_path / "mount point"
    folder.mkdir()
    script = ("import sys; from lightml.log.network_fs import filesystem_of; "
              "print(filesystem_of(sys.argv[1] + '/sub/main.db'))")
    if shutil.which("unshare") is None:
        pytest.skip("no user and mount namespace here (needs unshare)")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount -t tmpfs lightml-test "$1" && exec "$2" -c "$3" "$1"',
                           "sh", str(folder.resolve()), sys.executable, script],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "Traceback" not in done.stderr:  # unshare or mount refused: Python never ran
        pytest.skip(f"no tmpfs mount in a user and mount namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    expected = FilesystemInfo("tmpfs", False, str(folder.resolve()))
    assert done.stdout.strip() == repr(expected)


def _on_nfs(folder: Path):
    return network_fs.probe_with_mounts([Mount("/", "ext4", "/dev/vda1"),
                                         Mount(str(folder.resolve()), "nfs4", "filer:/export/lab")])


def test_the_guard_refuses_a_sqlite_file_on_a_network_mount_in_one_line(tmp_path: Path) -> None:
    shared, local = tmp_path / "shared", tmp_path / "local"
    shared.mkdir()
    local.mkdir()
    with network_fs.probe_replaced(_on_nfs(shared)):
        with pytest.raises(NetworkFilesystemError) as refused:
            network_fs.refuse_writing(SQLiteEngine(shared / "main.db"))
        network_fs.refuse_writing(SQLiteEngine(local / "main.db"))  # a local disk: let through
        network_fs.refuse_writing(SQLiteEngine(shared / "main.db"), allow=True)
    message = str(refused.value)
    assert isinstance(refused.value, InvalidInputError) and "\n" not in message
    assert str(shared / "main.db") in message and f"nfs4 mounted at {shared.resolve()}" in message
    for option in ("--db postgresql://user@host/db", "lightml watch", "LIGHTML_ALLOW_NETWORK_FS=1",
                   "allow_network_filesystem=True"):
        assert option in message


def test_the_guard_looks_where_the_file_really_is(tmp_path: Path) -> None:
    """A link on a local disk to a registry on a shared one, and a registry whose folders do not
    exist yet (``init_registry`` creates them): both are on the shared disk."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "main.db").touch()
    link = tmp_path / "main.db"
    link.symlink_to(shared / "main.db")
    asked: list[Path] = []

    def probe(path: Path) -> FilesystemInfo:
        asked.append(path)
        return _on_nfs(shared)(path)

    with network_fs.probe_replaced(probe):
        with pytest.raises(NetworkFilesystemError):
            network_fs.refuse_writing(SQLiteEngine(link))
        with pytest.raises(NetworkFilesystemError):
            network_fs.refuse_writing(SQLiteEngine(shared / "not" / "yet" / "main.db"))
    assert asked == [(shared / "main.db").resolve(), shared.resolve()]


@pytest.mark.parametrize("value, allowed", [("1", True), ("true", True), ("YES", True), ("0", False),
                                            ("", False), (None, False)])
def test_the_environment_override(monkeypatch, tmp_path: Path, value, allowed) -> None:
    if value is None:
        monkeypatch.delenv(network_fs.ALLOW_ENV, raising=False)
    else:
        monkeypatch.setenv(network_fs.ALLOW_ENV, value)
    assert network_fs.allowed_by_environment() is allowed
    with network_fs.probe_replaced(_on_nfs(tmp_path)):
        if allowed:
            network_fs.refuse_writing(SQLiteEngine(tmp_path / "main.db"))
        else:
            with pytest.raises(NetworkFilesystemError):
                network_fs.refuse_writing(SQLiteEngine(tmp_path / "main.db"))


def test_the_probe_is_put_back_after_the_block(tmp_path: Path) -> None:
    real = network_fs.probe
    with pytest.raises(RuntimeError):
        with network_fs.probe_replaced(_on_nfs(tmp_path)):
            assert network_fs.probe is not real
            raise RuntimeError("a failing test")
    assert network_fs.probe is real
    network_fs.refuse_writing(SQLiteEngine(tmp_path / "main.db"))  # the real probe: a local disk
    assert os.listdir(tmp_path) == []  # the guard itself creates nothing
