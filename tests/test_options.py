"""Options: gsyncd names, defaults (spec section 6), pairs, files, errors."""

import pickle

import pytest

from streamsync.errors import ConfigError
from streamsync.options import OPTION_SPECS, Options


def test_defaults_are_the_gsyncd_ones():
    o = Options()
    assert o.changelog_batch_size == 727040
    assert o.sync_jobs == 3
    assert o.max_rsync_retries == 10
    assert o.ignore_deletes is False
    assert o.sync_xattrs is True and o.sync_acls is True
    assert o.sync_method == "rsync"
    assert o.gfid_conflict_resolution is True
    assert o.changelog_archive_format == "%Y%m"
    assert o.change_interval == 5
    assert o.hot_tier is False
    assert o.rsync_options == ""
    assert o.get("ssh-port") == 22


def test_from_pairs_as_the_cli_gives_them():
    o = Options.from_pairs(["changelog-batch-size=1000", "ignore-deletes=true",
                            "sync-method=tarssh", "hot-tier=yes", "rsync-options=--a --b=c"])
    assert (o.changelog_batch_size, o.ignore_deletes, o.sync_method, o.hot_tier) == \
        (1000, True, "tarssh", True)
    assert o.rsync_options == "--a --b=c"
    # base is kept, later pairs win
    o2 = Options.from_pairs(["sync-xattrs=off"], base=o)
    assert o2.sync_xattrs is False and o2.sync_method == "tarssh"


@pytest.mark.parametrize("pair,needle", [
    ("no-such-option=1", "unknown option"),
    ("changelog-batch-size=abc", "changelog-batch-size"),
    ("changelog-batch-size=-1", "minimum"),
    ("ignore-deletes=maybe", "boolean"),
    ("sync-method=scp", "sync-method"),
    ("sync-jobs=101", "maximum"),
    ("ignore-deletes", "NAME=VALUE"),
])
def test_bad_names_and_values_raise_config_error(pair, needle):
    with pytest.raises(ConfigError) as exc:
        Options.from_pairs([pair])
    assert needle in str(exc.value)


def test_from_file_ini_and_plain(tmp_path):
    ini = tmp_path / "gsyncd.conf"
    ini.write_text("[vars]\nchangelog-batch-size = 2048\nsync-acls = false\n"
                   "# comment\n[peers a b]\nignore-deletes = true\n")
    o = Options.from_file(ini)
    assert (o.changelog_batch_size, o.sync_acls, o.ignore_deletes) == (2048, False, True)
    plain = tmp_path / "plain.conf"
    plain.write_text("# x\nsync_method = tarssh\n\nmax-rsync-retries=3\n")
    o = Options.from_file(plain)
    assert (o.sync_method, o.max_rsync_retries) == ("tarssh", 3)
    bad = tmp_path / "bad.conf"
    bad.write_text("sync-jobs = 2\nfrobnicate = 1\n")
    with pytest.raises(ConfigError, match=r"bad.conf:2: unknown option"):
        Options.from_file(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        Options.from_file(tmp_path / "missing.conf")


def test_immutable_replace_equality_pickle():
    o = Options()
    with pytest.raises(AttributeError):
        o.sync_jobs = 4
    o2 = o.replace(sync_jobs=4, **{"ignore-deletes": "true"})
    assert o.sync_jobs == 3 and o2.sync_jobs == 4 and o2.ignore_deletes is True
    assert pickle.loads(pickle.dumps(o2)) == o2
    assert o2.changed() == {"sync-jobs": 4, "ignore-deletes": True}
    assert hash(o2) == hash(Options(sync_jobs=4, ignore_deletes=True))
    with pytest.raises(AttributeError):
        o.not_an_option  # noqa: B018


def test_legacy_use_tarssh_selects_tarssh():
    assert Options(use_tarssh=True).sync_method == "tarssh"
    assert Options.from_pairs(["use-tarssh=true"]).sync_method == "tarssh"


def test_every_spec_default_roundtrips_through_text():
    for name, spec in OPTION_SPECS.items():
        text = str(spec.default).lower() if spec.type is bool else str(spec.default)
        assert Options.from_pairs([f"{name}={text}"]).get(name) == spec.default
