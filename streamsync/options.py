"""Worker options under gsyncd's own names and defaults (spec section 6).

:class:`Options` is an immutable set of values keyed by gsyncd names
(``changelog-batch-size``, ``ignore-deletes``, ...). Read a value with
:meth:`Options.get` or as an attribute with underscores; build one from
``NAME=VALUE`` pairs (what ``-o`` takes on the command line), from a
gsyncd-style config file, or with keywords. Unknown names and bad values raise
:class:`~streamsync.errors.ConfigError`.

>>> opts = Options.from_pairs(["changelog-batch-size=1024", "ignore-deletes=true"])
>>> opts.changelog_batch_size, opts.get("ignore-deletes"), opts.sync_method
(1024, True, 'rsync')
>>> opts.replace(sync_method="tarssh").sync_method
'tarssh'
"""

from __future__ import annotations

import configparser
import os
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple

from .errors import ConfigError

__all__ = ["Options", "OPTION_SPECS", "OptionSpec", "parse_bool"]

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0", ""})


def parse_bool(text: Any) -> bool:
    """gsyncd's boolean spelling: true/false, yes/no, on/off, 1/0 (any case).

    >>> parse_bool("Yes"), parse_bool("off")
    (True, False)
    """
    if isinstance(text, bool):
        return text
    if isinstance(text, int) and text in (0, 1):
        return bool(text)
    low = str(text).strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"not a boolean: {text!r} (use true or false)")


class OptionSpec(NamedTuple):
    """One option: gsyncd name, default, type (``int``, ``bool``, ``str``), constraints."""

    name: str
    default: Any
    type: type
    choices: tuple[str, ...] | None = None
    min: int | None = None
    max: int | None = None
    help: str = ""


_SPECS = (
    OptionSpec("changelog-batch-size", 727040, int, min=0,
               help="bytes of processed changelog per batch"),
    OptionSpec("sync-jobs", 3, int, min=1, max=100, help="parallel data transfers"),
    OptionSpec("max-rsync-retries", 10, int, min=1, help="total transfer attempts per batch"),
    OptionSpec("copy-small-files", 1 << 30, int, min=0,
               help="streamsync: regular files up to this many bytes are copied in-process "
                    "(up to 1 MiB read and written, larger ones by the kernel: "
                    "copy_file_range/sendfile) instead of by an rsync run "
                    "(local targets; 0: always rsync)"),
    OptionSpec("ignore-deletes", False, bool, help="do not send UNLINK/RMDIR"),
    OptionSpec("sync-xattrs", True, bool, help="rsync --xattrs; xattr M records -> data"),
    OptionSpec("sync-acls", True, bool, help="rsync --acls; xattr M records -> data"),
    OptionSpec("sync-method", "rsync", str, choices=("rsync", "tarssh"), help="data engine"),
    OptionSpec("use-tarssh", False, bool, help="legacy spelling of sync-method=tarssh"),
    OptionSpec("use-rsync-xattrs", False, bool, help="legacy mark-via-rsync mode"),
    OptionSpec("change-detector", "changelog", str, choices=("changelog", "xsync")),
    OptionSpec("special-sync-mode", "", str, choices=("", "normal", "partial", "recover")),
    OptionSpec("gfid-conflict-resolution", True, bool, help="fix entry failures (spec 3.5)"),
    OptionSpec("changelog-archive-format", "%Y%m", str, help="archive_<fmt>.tar name"),
    OptionSpec("change-interval", 5, int, min=0, help="seconds between live crawls"),
    OptionSpec("replica-failover-interval", 1, int, min=0),
    OptionSpec("slave-timeout", 120, int, min=0),
    OptionSpec("use-meta-volume", False, bool),
    OptionSpec("meta-volume-mnt", "/var/run/gluster/shared_storage", str),
    OptionSpec("working-dir", "", str),
    OptionSpec("checkpoint", 0, int, min=0),
    OptionSpec("rsync-command", "rsync", str),
    OptionSpec("rsync-options", "", str),
    OptionSpec("rsync-ssh-options", "", str),
    OptionSpec("rsync-opt-existing", True, bool),
    OptionSpec("rsync-opt-ignore-missing-args", True, bool),
    OptionSpec("log-rsync-performance", False, bool),
    OptionSpec("ssh-command", "ssh", str),
    OptionSpec("ssh-port", 22, int, min=1, max=65535),
    OptionSpec("ssh-options", "-oPasswordAuthentication=no -oStrictHostKeyChecking=no "
               "-i /var/lib/glusterd/geo-replication/secret.pem", str),
    OptionSpec("ssh-options-tar", "-oPasswordAuthentication=no -oStrictHostKeyChecking=no "
               "-i /var/lib/glusterd/geo-replication/tar_ssh.pem", str),
    OptionSpec("gluster-params", "aux-gfid-mount acl", str),
    OptionSpec("slave-gluster-params", "aux-gfid-mount acl", str),
    OptionSpec("hot-tier", False, bool, help="the brick is a tier hot brick: skip E records"),
    OptionSpec("hot-file-size", 16 << 20, int, min=0,
               help="streamsync: hold the data of a regular file this large (bytes) while "
                    "journal after journal changes it, and send it once it stops "
                    "(0: never hold; see streamsync.hold)"),
    OptionSpec("hot-file-max-wait", 600, int, min=0,
               help="streamsync: seconds a hot file's data is held at most before it is "
                    "sent anyway"),
    OptionSpec("max-deletes", "", str,
               help="refuse a batch deleting more than N entries, or P% of the source's "
                    "objects (default: no limit)"),
)

#: every known option, by gsyncd name
OPTION_SPECS: dict[str, OptionSpec] = {s.name: s for s in _SPECS}
_DEFAULTS: dict[str, Any] = {s.name: s.default for s in _SPECS}


def _convert(spec: OptionSpec, value: Any) -> Any:
    try:
        if spec.type is bool:
            out: Any = parse_bool(value)
        elif spec.type is int:
            if isinstance(value, bool):
                raise ValueError(f"not an integer: {value!r}")
            out = int(value) if isinstance(value, int) else int(str(value).strip(), 10)
        else:
            if not isinstance(value, str):
                raise ValueError(f"not a string: {value!r}")
            out = value
    except ValueError as exc:
        raise ConfigError(f"option {spec.name}: {exc}") from None
    if spec.choices is not None and out not in spec.choices:
        raise ConfigError(f"option {spec.name}: {out!r} is not one of "
                          f"{', '.join(repr(c) for c in spec.choices)}")
    if spec.min is not None and out < spec.min:
        raise ConfigError(f"option {spec.name}: {out} is below the minimum {spec.min}")
    if spec.max is not None and out > spec.max:
        raise ConfigError(f"option {spec.name}: {out} is above the maximum {spec.max}")
    return out


def _canonical(name: str) -> str:
    key = name.strip().replace("_", "-").lower()
    if key not in OPTION_SPECS:
        close = [n for n in OPTION_SPECS if key.split("-")[0] in n][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown option {name!r}{hint}")
    return key


class Options:
    """Immutable gsyncd options; attribute names use underscores.

    >>> Options(ignore_deletes=True).ignore_deletes
    True
    >>> Options().changelog_batch_size
    727040
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None, /, **kw: Any) -> None:
        merged = dict(_DEFAULTS)
        for source in (values or {}, kw):
            for name, value in source.items():
                key = _canonical(name)
                merged[key] = _convert(OPTION_SPECS[key], value)
        if merged["use-tarssh"] and "sync-method" not in _explicit(values, kw):
            merged["sync-method"] = "tarssh"
        object.__setattr__(self, "_values", merged)

    # -- construction ---------------------------------------------------
    @classmethod
    def from_pairs(cls, pairs: Iterable[str], base: "Options | None" = None) -> "Options":
        """Options from ``NAME=VALUE`` strings (the CLI's ``-o``), over ``base``.

        >>> Options.from_pairs(["sync-method=tarssh"]).sync_method
        'tarssh'
        """
        updates: dict[str, str] = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep:
                raise ConfigError(f"option {pair!r}: expected NAME=VALUE")
            updates[_canonical(name)] = value.strip()
        return (base or cls()).replace(**updates)

    @classmethod
    def from_file(cls, path: str | os.PathLike, base: "Options | None" = None) -> "Options":
        """Options from a gsyncd-style config file.

        INI sections (``[vars]``, ``[peers ...]``, ...) are merged in file order;
        a file without a section header is read as ``name = value`` lines.
        ``#``/``;`` comments and blank lines are ignored.
        """
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
        pairs: list[tuple[str, str, int]] = []
        has_section = any(line.lstrip().startswith("[") for line in text.splitlines())
        if has_section:
            parser = configparser.RawConfigParser(strict=False)
            parser.optionxform = str  # type: ignore[assignment,method-assign]
            try:
                parser.read_string(text, source=str(path))
            except configparser.Error as exc:
                raise ConfigError(f"{path}: {exc}") from None
            for section in parser.sections():
                for name, value in parser.items(section):
                    pairs.append((name, value, 0))
        else:
            for lineno, raw in enumerate(text.splitlines(), 1):
                line = raw.strip()
                if not line or line[0] in "#;":
                    continue
                name, sep, value = line.partition("=")
                if not sep:
                    name, sep, value = line.partition(":")
                if not sep:
                    raise ConfigError(f"{path}:{lineno}: expected 'name = value'")
                pairs.append((name, value, lineno))
        updates: dict[str, str] = {}
        for name, value, lineno in pairs:
            try:
                updates[_canonical(name)] = value.strip()
            except ConfigError as exc:
                where = f"{path}:{lineno}" if lineno else str(path)
                raise ConfigError(f"{where}: {exc}") from None
        try:
            return (base or cls()).replace(**updates)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    # -- access ---------------------------------------------------------
    def get(self, name: str) -> Any:
        """The value of a gsyncd-named option."""
        return self._values[_canonical(name)]

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        key = attr.replace("_", "-")
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"no option {key!r}") from None

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError("Options are immutable; use .replace(...)")

    def replace(self, **kw: Any) -> "Options":
        """A copy with some values changed (underscore or dash names)."""
        values = dict(self._values)
        for name, value in kw.items():
            key = _canonical(name)
            values[key] = _convert(OPTION_SPECS[key], value)
            if key == "use-tarssh" and values[key] and "sync-method" not in \
                    {_canonical(n) for n in kw}:
                values["sync-method"] = "tarssh"
        new = object.__new__(Options)
        object.__setattr__(new, "_values", values)
        return new

    def to_dict(self) -> dict[str, Any]:
        """Every option by gsyncd name."""
        return dict(self._values)

    def changed(self) -> dict[str, Any]:
        """Only the options that differ from the defaults."""
        return {k: v for k, v in self._values.items() if _DEFAULTS[k] != v}

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Options) and other._values == self._values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.changed().items())
        return f"Options({inner})"

    def __reduce__(self):
        return (Options, (self.changed(),))


def _explicit(values: Mapping[str, Any] | None, kw: Mapping[str, Any]) -> set[str]:
    return {_canonical(n) for n in list((values or {}).keys()) + list(kw.keys())}


#: a callable returning an Options, used by stages that default their options
OptionsFactory = Callable[[], Options]
