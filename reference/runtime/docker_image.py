"""Build the node image from what this machine already has: no registry, no download.

The Docker engine here starts with no images and cannot pull any. So the
image is assembled by hand: a root filesystem tarball holding only the
shared libraries the host's Python needs (found with `ldd`), the `iptables`
binary and its extensions (to cut links inside a container), and empty
mount points. The Python install and the project tree (with its venv) are
not copied: containers bind-mount them read-only at the same paths as on
the host, so the venv's absolute paths keep working and a code change needs
no rebuild.

The tarball is imported with `docker import` under a tag made of a content
hash of its file list, so an unchanged machine reuses the cached image.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

IMAGE_REPO = "d11-node"

# Executables the image carries besides the Python interpreter.
_EXTRA_BINARIES = ("/usr/sbin/xtables-nft-multi", "/bin/sh")
_XTABLES_DIR = Path("/usr/lib/x86_64-linux-gnu/xtables")
_LDD_TIMEOUT_S = 10.0
_LDD_LINE = re.compile(r"(/\S+) \(0x[0-9a-f]+\)$")


def python_prefix() -> Path:
    """The real Python install behind the venv (bind-mounted into containers)."""
    return Path(sys.base_prefix).resolve()


def _shared_libs(paths: list[Path]) -> set[Path]:
    """Every library `ldd` lists for `paths`, including the dynamic loader."""
    libs: set[Path] = set()
    for path in paths:
        result = subprocess.run(
            ["ldd", str(path)], capture_output=True, text=True, timeout=_LDD_TIMEOUT_S, check=False
        )
        for line in result.stdout.splitlines():
            match = _LDD_LINE.search(line.strip())
            if match and not match.group(1).startswith((str(python_prefix()), sys.prefix)):
                libs.add(Path(match.group(1)))
    return libs


@functools.lru_cache(maxsize=1)
def binaries() -> list[Path]:
    """The executables and extension modules whose libraries the image must hold."""
    prefix = python_prefix()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = [
        prefix / "bin" / version,
        *sorted((prefix / "lib" / version / "lib-dynload").glob("*.so")),
    ]
    found += [Path(b) for b in _EXTRA_BINARIES if Path(b).exists()]
    found += sorted(_XTABLES_DIR.glob("*.so")) if _XTABLES_DIR.is_dir() else []
    site = Path(sys.prefix) / "lib" / version / "site-packages"
    return found + sorted(site.rglob("*.so"))


@functools.lru_cache(maxsize=1)
def rootfs_files() -> list[Path]:
    """Host files to copy into the image, sorted: `ldd` of every one of `binaries()`.

    One `ldd` per file (~180 of them): 1 s on an idle machine, 36 s seen under
    a load of 50 on 2 cores. So it runs only to build the image, not to name it.
    """
    prefix = python_prefix()
    found = binaries()
    libs = _shared_libs(found)
    copied = {p for p in found if not str(p).startswith((str(prefix), sys.prefix))}
    return sorted(copied | libs)


def _add_file(tar: tarfile.TarFile, path: Path, added: set[Path]) -> None:
    """Add `path` (following symlinks) plus, for a symlink, the link itself."""
    real = path.resolve()
    if real not in added:
        added.add(real)
        tar.add(str(real), arcname=str(real).lstrip("/"), recursive=False)
    # The name a loader looks for (e.g. libc.so.6 -> libc.so.6.x), in its real directory.
    alias = path.parent.resolve() / path.name
    if alias not in added:
        added.add(alias)
        info = tarfile.TarInfo(str(alias).lstrip("/"))
        info.type = tarfile.SYMTYPE
        info.linkname = str(real)
        tar.addfile(info)


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def build_rootfs(files: list[Path]) -> bytes:
    """The root filesystem as an uncompressed tarball, in memory (a few tens of MB)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("tmp", "data", "proc", "sys", "dev", "etc", "run", "var", "root", "usr"):
            _add_dir(tar, name, 0o1777 if name == "tmp" else 0o755)
        # The merged-/usr layout of Debian: /lib and /bin are links into /usr.
        for link in ("lib", "lib64", "bin", "sbin"):
            if Path("/" + link).is_symlink():
                info = tarfile.TarInfo(link)
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink("/" + link)
                tar.addfile(info)
        _add_text(tar, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
        _add_text(tar, "etc/group", "root:x:0:\n")
        seen = {"usr", "etc", "tmp"}
        added: set[Path] = set()
        for path in files:
            for where in (path.resolve(), path.parent.resolve() / path.name):
                for parent in reversed(where.parents[:-1]):
                    name = str(parent).lstrip("/")
                    if name not in seen:
                        seen.add(name)
                        _add_dir(tar, name)
            _add_file(tar, path, added)
        iptables = Path("/usr/sbin/xtables-nft-multi")
        if iptables.exists():
            for alias in ("iptables", "iptables-restore", "iptables-save"):
                info = tarfile.TarInfo(f"usr/sbin/{alias}")
                info.type = tarfile.SYMTYPE
                info.linkname = "xtables-nft-multi"
                tar.addfile(info)
    return buf.getvalue()


def image_tag(files: list[Path]) -> str:
    """A content hash of the file list (path, size, mtime): same machine, same tag.

    `ensure_image` names the image by `binaries()` alone: the libraries `ldd`
    finds follow from them, and an image keeps working when the host's copy
    of a library is upgraded (it holds its own, consistent set).
    """
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{int(stat.st_mtime)}\n".encode())
    return f"{IMAGE_REPO}:{digest.hexdigest()[:16]}"


def ensure_image(client: Any) -> str:
    """Return the tag of the node image, importing it first if it is not cached."""
    import docker.errors

    tag = image_tag(binaries())
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    rootfs = build_rootfs(rootfs_files())
    repo, _, version = tag.partition(":")
    # `docker import` is the only way in without a registry; the API call is
    # POST /images/create?fromSrc=- with the tarball as the body.
    client.api.import_image_from_data(rootfs, repository=repo, tag=version)
    client.images.get(tag)  # raises if the import did not produce the image
    return tag
