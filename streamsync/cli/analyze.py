"""``streamsync analyze``: what changed, when, where, how much churn."""

from __future__ import annotations

import argparse
import os
import sys
from itertools import accumulate, count
from typing import Any, Callable

import orjson

from .. import human
from ..analysis._cli_common import source_brick
from ..progress import Progress, progress_for, showing
from ..times import TIME_HELP, time_arg
from ..analysis._input import iter_journals
from ..analysis.resolve import Resolver
from ..analysis.summary import parse_duration, summarize_journals
from ..errors import ConfigError
from ..records import Changelog

HELP = "summarise journals: op mix over time, hot files/directories, churn, lag"

DESCRIPTION = """\
Analyse changelog history offline.

PATH may be journal files (raw or processed), changelog directories (flat or
YYYY/MM/DD), bricks (their .glusterfs/changelogs) or gsyncd archive_*.tar files.

The report counts records per type and fop (D records as DATA), per time
bucket (--bucket), the hottest directories and files (--top), churn (inodes
created and gone inside the window, files written in several journals that
gsyncd would send again, rename chains), the bytes the data phase would move
(when a brick is given: sizes of its gfid handles) and, with --data-stime, the
replication lag. gfids are shown as paths, resolved through the brick when PATH is one and
through the journals' own entry records otherwise.

--json prints one JSON object (changelogs, records, first_ts, last_ts, fops,
timeline, hot_dirs, hot_files, churn, lag). --dask runs the same analysis on
Dask and prints the same result: the gfids are split into one shard per worker,
every worker reads every journal and keeps its shard's state, and only the
report's parts come back. By default the work runs in one process per core
(Dask's processes scheduler); --scheduler local starts a distributed cluster
for the run instead (about 1 s more), and an address (tcp://HOST:PORT) uses a
running one. Whole command, two cores, journals of 500 records: --dask pays
from about 250 journals (1.3x at 500, about 1.5x at 1,000-2,000); below that,
run without it. With --save or --merge, the whole summary is computed
on Dask and merged here, which costs more than it saves on a few cores.
"""

EPILOG = """\
examples:
  streamsync analyze BRICK
  streamsync analyze --json --bucket 10m /archive/dir /other/brick
  streamsync analyze --dask /many/journals
  streamsync analyze --dask --scheduler tcp://127.0.0.1:8786 /many/journals
  streamsync analyze --save a.json BRICK_A; streamsync analyze --merge a.json BRICK_B
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help=HELP, description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="journal files, changelog directories, bricks or archive_*.tar files")
    p.add_argument("--bucket", default="1h", type=_duration, metavar="WIDTH",
                   help="time bucket width, e.g. 30, 15m, 1h, 1d (default 1h)")
    p.add_argument("--top", type=int, default=20, metavar="N",
                   help="entries in the hot lists (default 20)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--dask", action="store_true", help="compute with Dask (streamsync[dask])")
    p.add_argument("--scheduler", metavar="ADDR",
                   help="with --dask: 'processes' (one per core), 'local' (a distributed "
                        "cluster started for the run), 'sync', 'threads' or a distributed "
                        "scheduler address (default: processes)")
    p.add_argument("--scheduler-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="with --dask and a scheduler address: how long to try to reach it "
                        "(default 10)")
    p.add_argument("--shards", type=_positive, metavar="N",
                   help="with --dask: gfid shards, one task each (default: one per worker)")
    p.add_argument("--partitions", type=_positive, metavar="N",
                   help="with --dask and --save/--merge: bag partitions")
    p.add_argument("--data-stime", type=time_arg, metavar="TIME",
                   help=f"replica's data stime, to report the replication lag ({TIME_HELP})")
    p.add_argument("--since", type=time_arg, metavar="TIME",
                   help=f"only journals with stamp >= TIME ({TIME_HELP})")
    p.add_argument("--until", type=time_arg, metavar="TIME",
                   help=f"only journals with stamp <= TIME ({TIME_HELP})")
    p.add_argument("--brick", metavar="DIR", help="brick used to resolve gfids to paths")
    p.add_argument("--save", metavar="FILE",
                   help="also write the full summary (lossless JSON) to FILE, to merge later")
    p.add_argument("--merge", action="append", default=[], metavar="FILE",
                   help="merge a summary saved with --save into this one (repeatable; "
                        "same --bucket and --data-stime)")
    p.set_defaults(func=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return value


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _load(path: str):
    from ..analysis.export import summary_from_json
    try:
        with open(path, "rb") as fh:
            return summary_from_json(fh.read())
    except OSError as exc:
        raise ConfigError(f"--merge {path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:  # orjson's JSONDecodeError is one too
        raise ConfigError(f"--merge {path}: not a saved streamsync summary ({exc})") from None


def _check_save_target(path: str) -> None:
    """Refuse a ``--save`` file that cannot be written before the analysis runs."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ConfigError(f"--save {path}: no such directory {parent}")
    if os.path.isdir(path):
        raise ConfigError(f"--save {path}: is a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--save {path}: directory {parent} is not writable")


#: the local schedulers ``--scheduler`` accepts by name (anything else is an address)
_LOCAL_SCHEDULERS = ("sync", "synchronous", "single-threaded", "threads", "threading",
                     "processes", "multiprocessing")


def _on_dask(job, args: argparse.Namespace):
    """``job(scheduler)`` on the scheduler ``--scheduler`` names (Dask's process pool by
    default); every failure to start it a one-line ConfigError."""
    try:
        import dask  # noqa: F401  (the extra is installed)
    except ImportError:
        raise ConfigError("--dask needs Dask: pip install 'streamsync[dask]'") from None
    scheduler = args.scheduler or "processes"
    if scheduler in ("processes", "multiprocessing"):
        return _on_process_pool(job)
    if scheduler in _LOCAL_SCHEDULERS:
        return job(scheduler)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(f"--scheduler {scheduler}: needs dask.distributed: "
                          f"pip install 'streamsync[dask]'") from None
    if scheduler == "local":
        # a cluster for this run only: no malloc trimming after every task (the
        # nanny's MALLOC_TRIM_THRESHOLD_, 1.07-1.12x of a shard's reading)
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_":
                              None}), \
                LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1,
                             processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            return job(client)
    if not ("://" in scheduler or (":" in scheduler and scheduler[0].isdigit())):
        raise ConfigError(f"--scheduler {scheduler}: not a Dask scheduler (local, one of "
                          f"{', '.join(_LOCAL_SCHEDULERS)}, or an address such as "
                          f"tcp://HOST:PORT)")
    try:
        client = Client(scheduler, timeout=args.scheduler_timeout)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"--scheduler {scheduler}: cannot reach the Dask scheduler "
                          f"within {args.scheduler_timeout:g} s ({exc})") from None
    try:
        return job(client)
    finally:
        client.close()


def _on_process_pool(job):
    """``job("processes")`` on a pool of one process per core. Forked when this
    process runs no other thread (the workers then start with streamsync already
    imported: 0.2 s less than spawning them, measured at 2,000 journals), else
    Dask's own (spawned) pool."""
    import multiprocessing
    import threading
    if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return job("processes")
    from concurrent.futures import ProcessPoolExecutor

    import dask
    with ProcessPoolExecutor(os.cpu_count() or 1,
                             mp_context=multiprocessing.get_context("fork")) as pool, \
            dask.config.set(pool=pool):
        pool.submit(int).result()  # forks every worker now, before the job starts a thread
        return job("processes")


def _with_bars(journals: list[Changelog], work: Callable[[Callable[[int], None] | None], Any],
               *, draw: bool = True) -> Any:
    """``work(progress)``: on a terminal (and with ``draw``), bars of the journals read
    and their bytes, which ``progress(count)`` moves; ``None`` for no bars."""
    display = progress_for(sys.stderr, label="analyze", data="read") if draw else None
    with showing(display):
        return work(None if display is None else _journals_read(display, journals))


def _journals_read(display: Progress, journals: list[Changelog]) -> Callable[[int], None]:
    """A progress callback drawing on ``display``: the journals read so far (by every
    shard, or in all), and their bytes."""
    sizes = list(accumulate((j.size for j in journals), initial=0))
    display.journals(len(journals))
    display.queued(0, sizes[-1])
    last = [0]

    def read(n: int) -> None:
        n = min(n, len(journals))
        display.journal_done(n - last[0])
        display.sent(0, sizes[n] - sizes[last[0]])
        last[0] = n
    return read


def _workers_here(args: argparse.Namespace) -> bool:
    """Whether the Dask workers run on this host (they count into a file here:
    :mod:`streamsync.analysis.tally`); not for a scheduler's address."""
    return args.scheduler in (None, "local", *_LOCAL_SCHEDULERS)


def run(args: argparse.Namespace) -> int:
    if not args.paths and not args.merge:
        raise ConfigError("give at least one PATH or --merge FILE")
    if not args.dask:
        given = [f"--{name}" for name in ("scheduler", "shards", "partitions")
                 if getattr(args, name) is not None]
        if given:
            raise ConfigError(f"{', '.join(given)}: only with --dask")
    elif args.partitions is not None and not (args.save or args.merge):
        raise ConfigError("--partitions: only with --save or --merge (the report is split "
                          "by --shards)")
    elif args.shards is not None and (args.save or args.merge):
        raise ConfigError("--shards: not with --save or --merge (the summary is split "
                          "by --partitions)")
    brick = source_brick(args.brick, args.paths)
    if args.save:
        _check_save_target(args.save)
    others = [(path, _load(path)) for path in args.merge]
    journals = list(iter_journals(args.paths, since=args.since, until=args.until))
    if args.dask and not (args.save or others):
        from ..analysis.dask import report_dask

        def report(scheduler):
            return _with_bars(journals, lambda progress: report_dask(
                journals, top=args.top, bucket=args.bucket, data_stime=args.data_stime,
                shards=args.shards, scheduler=scheduler, brick=brick, progress=progress),
                draw=_workers_here(args))
        return _print(_on_dask(report, args), args)
    if args.dask:
        from ..analysis.dask import summarize_dask

        def summary_of(scheduler):
            return _with_bars(journals, lambda progress: summarize_dask(
                journals, bucket=args.bucket, data_stime=args.data_stime,
                npartitions=args.partitions, scheduler=scheduler, progress=progress),
                draw=_workers_here(args))
        summary = _on_dask(summary_of, args)
    else:
        def summary_here(progress):
            done = count(1)
            return summarize_journals(
                journals, bucket=args.bucket, data_stime=args.data_stime,
                progress=None if progress is None else lambda _journal: progress(next(done)))
        summary = _with_bars(journals, summary_here)
    if others:
        from ..analysis.summary import merge
        for path, other in others:
            try:
                summary = merge(summary, other)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"--merge {path}: {exc}") from None
    if args.save:
        from ..analysis.export import summary_to_json
        with open(args.save, "wb") as fh:
            fh.write(summary_to_json(summary))
    resolver = Resolver.from_summary(summary, brick=brick)
    report = summary.to_dict(top=args.top, paths=resolver.path)
    if brick is not None:
        from ..views import BrickView
        report["transfer"] = summary.transfer_estimate(BrickView(brick))
    return _print(report, args)


def _print(report: dict, args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    if args.json:
        out.write(orjson.dumps(report) + b"\n")
    else:
        out.write(render_text(report).encode("utf-8", "surrogateescape"))
    out.flush()
    return 0


def _show(path) -> str:
    if isinstance(path, dict):  # {"b64": ...}: not UTF-8
        return "<b64:" + path["b64"] + ">"
    return path.replace("\n", "\\n").replace("\t", "\\t")


def render_text(r: dict) -> str:
    """The terminal report for a :meth:`Summary.to_dict` result."""
    lines = []
    add = lines.append
    add(f"journals   {r['changelogs']}  ({human.size(r['journal_bytes'])})")
    add(f"records    {r['records']}  " + "  ".join(f"{k} {v}" for k, v in r["types"].items()))
    add(f"window     {human.when(r['first_ts'])} .. {human.when(r['last_ts'])}")
    add(f"gfids      {r['gfids']}")
    add("")
    add("fops")
    width = max((len(k) for k in r["fops"]), default=4)
    total = max(1, r["records"])
    for k, v in sorted(r["fops"].items(), key=lambda kv: (-kv[1], kv[0])):
        add(f"  {k:<{width}}  {v:>9}  {100.0 * v / total:5.1f}%")
    if r["timeline"]:
        add("")
        add(f"timeline (bucket {human.duration(r['bucket'])})")
        peak = max(sum(b["fops"].values()) for b in r["timeline"]) or 1
        for b in r["timeline"]:
            n = sum(b["fops"].values())
            bar = "#" * max(1 if n else 0, round(40 * n / peak))
            add(f"  {human.when(b['start'])}  {b['changelogs']:>5} journals  {n:>9} records  {bar}")
    if r["hot_dirs"]:
        add("")
        add("hot directories (records)")
        for d in r["hot_dirs"]:
            add(f"  {d['records']:>9}  {_show(d['path'])}")
    if r["hot_files"]:
        add("")
        add("most re-sent files (journals with a data record)")
        for d in r["hot_files"]:
            add(f"  {d['changelogs']:>9}  {_show(d['path'])}")
    c = r["churn"]
    add("")
    add("churn")
    add(f"  created {c['created']}, created and gone again {c['created_then_deleted']} "
        f"({c['wasted_records']} records of wasted replication work)")
    add(f"  files written {c['written_files']}, extra data transfers {c['data_resends']}")
    add(f"  renamed inodes {c['renamed']}")
    for d in c["rename_chains"]:
        add(f"  {d['renames']:>9} renames  {_show(d['path'])}")
    if r.get("transfer"):
        t = r["transfer"]
        add("")
        add(f"data to transfer (sizes from the brick): {human.count(t['files'], 'file')}, "
            f"{human.size(t['bytes'])} once; {human.size(t['bytes_per_changelog'])} if every "
            f"journal were its own batch; {t['gone']} written files already gone")
    if r.get("lag"):
        lag = r["lag"]
        add("")
        add(f"lag behind data stime {human.when(lag['data_stime'])}: "
            f"{human.duration(lag['seconds'])}, {human.count(lag['changelogs'], 'journal')}, "
            f"{human.count(lag['records'], 'record')}, {human.size(lag['bytes'])} pending")
    return "\n".join(lines) + "\n"
