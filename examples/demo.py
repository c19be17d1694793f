"""The README's first command: replicate the bundled real GlusterFS 10.3 brick and verify it.

1. extract ``examples/demo-brick/demo.tar.gz`` (a real brick: data, ``.glusterfs``
   handles, 11 changelogs) into a fresh temporary directory;
2. ``streamsync replicate`` it into a fresh replica, with SQLite state;
3. verify the replica against the source brick and against the namespace the
   GlusterFS mount showed (``demo.manifest.jsonl``);
4. print a short report; exit 1 on any difference.

The temporary directory is removed at the end (the report says so);
``--keep`` keeps it. Exit status: 0 equal, 1 a difference, 141 when the
reader of its output went away (``| head``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from streamsync.errors import StreamsyncError
from streamsync.replicate import replicate
from streamsync.snapshot import extract_brick_snapshot
from streamsync.verify import compare, load_manifest, scan_tree

HERE = os.path.dirname(os.path.abspath(__file__))
BRICK_TAR = os.path.join(HERE, "demo-brick", "demo.tar.gz")
MANIFEST = os.path.join(HERE, "demo-brick", "demo.manifest.jsonl")


def extract(tar_path: str, dest: str) -> None:
    """Extract the brick tarball (owners kept when run as root)."""
    extract_brick_snapshot(tar_path, dest)


def _as_root(argv: list[str]) -> None:
    """An exact replica needs root (owners, trusted.* xattrs, files of mode 0000):
    re-run under sudo when that works without a password."""
    if os.geteuid() == 0 or os.environ.get("STREAMSYNC_DEMO_NO_SUDO"):
        return
    sudo = shutil.which("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], capture_output=True).returncode == 0:
        os.execv(sudo, [sudo, "-n", "--preserve-env=PYTHONPATH", sys.executable,
                        os.path.abspath(__file__), *argv])
    print("note: not running as root: owners, trusted.* xattrs and unreadable files "
          "(mode 0000) cannot be replicated exactly; run as root for the full demo")


def _n(count: int, noun: str) -> str:
    """``1 batch``, ``2 batches``, ``3 files``."""
    plural = noun + ("es" if noun.endswith(("ch", "sh", "s", "x")) else "s")
    return f"{count} {noun if count == 1 else plural}"


def _stime(st) -> str:
    """An stime as the date it stands for (UTC)."""
    if st is None:
        return "none"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(st.sec)) + f" ({st.sec})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    _as_root(sys.argv[1:] if argv is None else argv)
    work = tempfile.mkdtemp(prefix="streamsync-demo-")
    brick = os.path.join(work, "brick")
    replica = os.path.join(work, "replica")
    try:
        t0 = time.monotonic()
        extract(BRICK_TAR, brick)
        t1 = time.monotonic()
        where = "kept after the demo" if args.keep else "removed at the end; --keep keeps it"
        print(f"source brick: {BRICK_TAR} extracted to {brick} ({t1 - t0:.2f} s; a temporary "
              f"directory, {where})")
        s = replicate(brick, replica, state_path=os.path.join(work, "state.sqlite"))
        print(f"replicated {_n(s.changelogs, 'changelog')} in {_n(s.batches, 'batch')}, "
              f"{s.duration:.2f} s: {_n(s.entry_ops, 'entry op')} ({s.entry_failures} failed), "
              f"{_n(s.meta_ops, 'meta op')}, {_n(s.data_files, 'file')} of data; stime "
              f"{_stime(s.data_stime)}")
        try:
            src_nodes = scan_tree(brick)
            rep_nodes = scan_tree(replica)
        except StreamsyncError as exc:
            print(f"verify: {exc}")
            print("demo: MISMATCH")
            return 1
        d_brick = compare(src_nodes, rep_nodes)
        # without root the extracted brick and the replica belong to the user, not
        # to the owners the mount showed: compare owners only when they could be kept
        ignore = () if os.geteuid() == 0 else ("uid", "gid")
        d_manifest = compare(load_manifest(MANIFEST), rep_nodes, ignore=ignore)
        kinds: dict[str, int] = {}
        for n in rep_nodes.values():
            kinds[n.type] = kinds.get(n.type, 0) + 1
        print(f"replica {replica}: {len(rep_nodes)} names "
              f"({kinds.get('d', 0)} dirs, {kinds.get('f', 0)} files, {kinds.get('l', 0)} symlinks, "
              f"{kinds.get('p', 0)} fifos), "
              f"{sum(1 for n in rep_nodes.values() if n.links)} names in hard-link groups")
        for label, diffs in (("source brick", d_brick), ("mount manifest", d_manifest)):
            if diffs:
                print(f"verify against the {label}: {len(diffs)} differences")
                for d in diffs[:20]:
                    print(f"  {d}")
            else:
                extra = " (owners not compared: not root)" if ignore and label == "mount manifest" else ""
                print(f"verify against the {label}: equal{extra}")
        ok = not d_brick and not d_manifest and not s.open_failures
        print("demo: OK" if ok else "demo: MISMATCH")
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. ./run.sh demo | head -1: the reader left, not an error to show
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
