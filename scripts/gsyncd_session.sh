#!/usr/bin/env bash
# A gsyncd geo-replication session between two volumes of this host, for the
# head-to-head benchmark (benchmarks/bench_volume_vs_gsyncd.py) and the takeover
# test (tests/test_takeover_gluster.py).
#
#   scripts/gsyncd_session.sh sshd WORKDIR          start sshd on 127.0.0.1:22 (pid in WORKDIR/sshd.pid)
#   [RSYNC=/path/to/rsync] scripts/gsyncd_session.sh create PRIMARY SECONDARY
#   scripts/gsyncd_session.sh start PRIMARY SECONDARY   (after restarting PRIMARY)
#   scripts/gsyncd_session.sh pause PRIMARY SECONDARY   (stop, keep the session and its stimes)
#   scripts/gsyncd_session.sh stop PRIMARY SECONDARY    (stop and delete the session)
#   scripts/gsyncd_session.sh sshd-stop WORKDIR
#
# What the lab notes found (../shared/lab/gluster/README.md), handled here:
# - gsyncd reaches the secondary over ssh as root on port 22 of the host name
#   the bricks use, so a private sshd listens on 127.0.0.1:22 with the host keys;
# - 'create push-pem' appends the key to authorized_keys 1-2 s after it returns:
#   start only once ssh with secret.pem works, or the session stays "Created";
# - the secondary gets features.read-only on, the primary changelog on (rollover 15 s).
# Needs root, glusterd running, and the two volumes created and started.
set -euo pipefail

HOST=$(hostname)
PEM=/var/lib/glusterd/geo-replication/secret.pem

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

cmd=${1:-}
case "$cmd" in
  sshd)
    work=${2:?WORKDIR}; mkdir -p "$work" /run/sshd /root/.ssh
    chmod 700 /root/.ssh
    cat > "$work/sshd_config" <<EOF
Port 22
ListenAddress 127.0.0.1
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile .ssh/authorized_keys
PidFile $work/sshd.pid
EOF
    /usr/sbin/sshd -f "$work/sshd_config" -E "$work/sshd.log"
    for _ in $(seq 100); do [ -s "$work/sshd.pid" ] && break; sleep 0.1; done
    [ -f /root/.ssh/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519
    grep -qf /root/.ssh/id_ed25519.pub /root/.ssh/authorized_keys 2>/dev/null \
      || cat /root/.ssh/id_ed25519.pub >> /root/.ssh/authorized_keys
    ssh -o StrictHostKeyChecking=accept-new -o BatchMode=yes "root@$HOST" true
    ;;
  sshd-stop)
    work=${2:?WORKDIR}
    [ -s "$work/sshd.pid" ] && kill "$(cat "$work/sshd.pid")" 2>/dev/null || true
    ;;
  create)
    pri=${2:?PRIMARY}; sec=${3:?SECONDARY}
    gluster system:: execute gsec_create >/dev/null
    gluster --mode=script volume geo-replication "$pri" "$HOST::$sec" create push-pem force >/dev/null
    # what the push-pem hook does on the secondary node (this host), done here
    # rather than trusted to the hook: its scp/ssh as root did not happen here
    gr=/var/lib/glusterd/geo-replication
    cp "$gr/common_secret.pem.pub" "$gr/${pri}_${sec}_common_secret.pem.pub"
    gluster system:: copy file "/geo-replication/${pri}_${sec}_common_secret.pem.pub" >/dev/null
    gluster system:: execute add_secret_pub root "geo-replication/${pri}_${sec}_common_secret.pem.pub" >/dev/null
    gluster volume set "$sec" features.read-only on >/dev/null
    # the key is a forced command (gsyncd): only "authenticated or not" matters (255: not)
    for _ in $(seq 100); do
      rc=0; ssh -i "$PEM" -o BatchMode=yes -o StrictHostKeyChecking=no "root@$HOST" true \
        </dev/null >/dev/null 2>&1 || rc=$?
      [ "$rc" != 255 ] && break
      sleep 0.2
    done
    if [ -n "${RSYNC:-}" ]; then
      # rsync 3.5.0 (Debian 12's security build) as gsyncd's receiver transfers
      # nothing (files stay 0 bytes, rc 0: see the lab notes): name another build
      # for both ends
      gluster volume geo-replication "$pri" "$HOST::$sec" config rsync-command "$RSYNC" >/dev/null
      gluster volume geo-replication "$pri" "$HOST::$sec" config rsync-options \
        "--rsync-path=$RSYNC" >/dev/null
    fi
    ;;
  start)
    # on a freshly (re)started primary: 'create' turned its changelog on, and a
    # brick running since before that sends gsyncd no changelog notifications
    # (the lab saw a session stay "Active / Changelog Crawl" syncing nothing)
    pri=${2:?PRIMARY}; sec=${3:?SECONDARY}
    gluster --mode=script volume geo-replication "$pri" "$HOST::$sec" start >/dev/null
    ;;
  pause)
    pri=${2:?PRIMARY}; sec=${3:?SECONDARY}
    gluster --mode=script volume geo-replication "$pri" "$HOST::$sec" stop force >/dev/null
    ;;
  stop)
    pri=${2:?PRIMARY}; sec=${3:?SECONDARY}
    gluster --mode=script volume geo-replication "$pri" "$HOST::$sec" stop force >/dev/null 2>&1 || true
    gluster --mode=script volume geo-replication "$pri" "$HOST::$sec" delete >/dev/null 2>&1 || true
    ;;
  *) usage ;;
esac
