"""An independent, minimal model of the seed's changelog rules, used as a test oracle.

It works the way gsyncd does - on processed text lines, splitting fields on
spaces, building ``.gfid/`` strings and entry dicts - but reads lines by
``\\n`` only and keeps every byte of a name (the fixed line handling, see
docs/differences.md). It shares no code with the pipeline beyond the
MemoryView used as the source. Output rows have the shape of
``streamsync plan`` JSON lines (names as ``str``).
"""

from __future__ import annotations

import stat as S

PFX = ".gfid/"


def _unesc(s):
    return s.replace("%20", " ").replace("%0A", "\n").replace("%25", "%")


def _stat_dict(st):
    if st is None:
        return {}
    return {"uid": st.uid, "gid": st.gid, "mode": st.mode, "atime": st.atime,
            "mtime": st.mtime}


def _split(entry):
    """'.gfid/<pgfid>/<bname>' -> (pgfid, bname)."""
    rest = entry[len(PFX):]
    return rest[:36], rest[37:]


def _name_gfid(view, entry):
    p, b = _split(entry)
    return view.entry_gfid(p, b)


def _readlink_name(view, entry, fallback_gfid):
    g = _name_gfid(view, entry)
    if g is None:
        return None
    t = view.readlink(g)
    if t is None:          # the seed would die with EINVAL here: use the inode's target
        return view.readlink(fallback_gfid)
    return t


def model_changelog(text, view, opts, gated, hot_tier):
    """(entries, meta gfids, data set, stats) of one processed changelog text."""
    entries, meta, datas = [], set(), set()
    stats = dict.fromkeys(["CREATE", "MKNOD", "UNLINK", "MKDIR", "RMDIR", "LINK", "SYMLINK",
                           "RENAME", "SETATTR", "SETXATTR", "XATTROP", "DATA"], 0)

    def count(fop):
        if fop == "FSETXATTR":
            fop = "SETXATTR"
        stats[fop] = stats.get(fop, 0) + 1

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        kind, f = line[:2], line[2:].split(" ")
        if kind == "E ":
            if hot_tier:
                continue
            fop = f[1]
            if gated and fop not in ("UNLINK", "RMDIR", "MKNOD"):
                continue
            count(fop)
            gfid = f[0]
            if fop in ("UNLINK", "RMDIR"):
                en = _unesc(PFX + f[2])
                gone = view.lstat(gfid) is None
                if gone:
                    datas.discard(PFX + gfid)
                if fop == "RMDIR" and not gone:
                    continue
                if not opts.get("ignore-deletes"):
                    entries.append({"op": fop, "gfid": gfid, "entry": en})
            elif fop in ("CREATE", "MKDIR", "MKNOD"):
                en = _unesc(PFX + f[-1])
                mode, uid, gid = int(f[2]), int(f[3]), int(f[4])
                if fop == "MKNOD" and mode & 0o1000:
                    entries.append({"op": "LINK", "gfid": gfid, "entry": en,
                                    "stat": {"uid": uid, "gid": gid, "mode": mode,
                                             "atime": 0, "mtime": 0}})
                    datas.add(PFX + gfid)
                else:
                    entries.append({"op": fop, "gfid": gfid, "entry": en, "mode": mode,
                                    "uid": uid, "gid": gid})
            elif fop == "RENAME":
                old, new = _unesc(PFX + f[-2]), _unesc(PFX + f[-1])
                st = view.lstat(gfid)
                link = None
                if st is not None and S.S_ISLNK(st.mode):
                    link = _readlink_name(view, new, gfid)
                entries.append({"op": "RENAME", "gfid": gfid, "entry": old, "entry1": new,
                                "stat": _stat_dict(st), "link": link})
            else:
                en = _unesc(PFX + f[-1])
                if _name_gfid(view, en) != gfid:
                    continue
                st = view.lstat(gfid)
                if st is None:
                    continue
                if fop == "LINK":
                    link = view.readlink(gfid) if S.S_ISLNK(st.mode) else None
                    entries.append({"op": "LINK", "gfid": gfid, "entry": en,
                                    "stat": _stat_dict(st), "link": link})
                elif fop == "SYMLINK":
                    link = view.readlink(gfid)
                    if link is not None:
                        entries.append({"op": "SYMLINK", "gfid": gfid, "entry": en,
                                        "stat": _stat_dict(st), "link": link})
        elif kind == "D ":
            datas.add(PFX + f[0])
        elif kind == "M ":
            count(f[1])
            if f[1] == "SETATTR":
                meta.add(f[0])
            elif f[1] in ("SETXATTR", "XATTROP", "FXATTROP"):
                if opts.get("sync-method", "rsync") != "tarssh" and \
                        (opts.get("sync-xattrs", True) or opts.get("sync-acls", True)):
                    datas.add(PFX + f[0])
    stats["DATA"] = len(datas) - stats["SETXATTR"] - stats["XATTROP"]
    return entries, meta, datas, stats


def model_run(changelogs, view, opts=None, data_stime=None, entry_stime=None,
              hot_tier=False):
    """Rows for ``changelogs`` = [(name, ts, bytes)] in order, like ``streamsync plan``."""
    opts = dict(opts or {})
    limit = opts.get("changelog-batch-size", 727040)
    rows = []
    todo = []
    for name, ts, data in changelogs:
        if data_stime is not None and ts < data_stime[0]:
            rows.append({"changelog": name, "ts": ts, "batch": None, "skipped": True,
                         "entries_gated": False, "entry_ops": [], "meta_ops": [], "data": [],
                         "stats": {}})
        else:
            todo.append((name, ts, data))
    batch, size = -1, None
    e_st = None if entry_stime is None else entry_stime[0]
    d_st = None if data_stime is None else data_stime[0]
    prev_ts = None
    for name, ts, data in todo:
        n = len(data)
        if size is None or size + n > limit:
            if size is not None:
                d_st = prev_ts - 1     # the previous batch completed: data stime moved
            batch += 1
            size = n
        else:
            size += n
        gated = e_st is not None and d_st is not None and ts <= max(e_st, d_st)
        entries, meta, datas, stats = model_changelog(
            data.decode("utf-8", "surrogateescape"), view, opts, gated, hot_tier)
        if entries and not gated:
            e_st = ts - 1              # entry ops sent: entry stime moved
        prev_ts = ts
        metas = []
        for g in sorted(meta):
            st = view.lstat(g)
            if st is not None:
                metas.append({"op": "META", "go": PFX + g, "stat": _stat_dict(st)})
        rows.append({"changelog": name, "ts": ts, "batch": batch, "skipped": False,
                     "entries_gated": gated, "entry_ops": [] if gated else entries,
                     "meta_ops": metas, "data": sorted(datas), "stats": stats})
    return rows
