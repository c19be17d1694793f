#!/bin/bash
# Run scripts/lab_workload_b.sh on a fresh single-brick GlusterFS volume and
# capture raw journals, libgfchangelog's processed output (history API; for
# binary, one file at a time) and the final handles listing.
#
#   lab_capture_b.sh VOL ENCODING DELPATH ROLLOVER OUTDIR [NSMALL]
#
# Uses the lab scripts in $LABDIR (default ../shared/lab/gluster next to the
# repo).  Leaves the volume running and mounted at /mnt/VOL (for replication
# checks); `lab_capture_b.sh --teardown VOL` removes it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LABDIR=${LABDIR:-$HERE/../../shared/lab/gluster}
export LAB=${LAB:-/tmp/glabb}
if [ "$1" = --teardown ]; then
    umount "/mnt/$2" 2>/dev/null || true
    gluster --mode=script volume stop "$2" force || true
    gluster --mode=script volume delete "$2" || true
    exit 0
fi
VOL=$1; ENC=$2; DEL=$3; ROLL=$4; OUT=$5; NSMALL=${6:-120}
BRICK=$LAB/bricks/$VOL
RUN=$LAB/runs/$VOL
rm -rf "$RUN" "$BRICK" "$OUT"; mkdir -p "$RUN" "$OUT"
"$LABDIR/setup.sh" volume "$VOL" "$ENC" "$DEL" "$ROLL"
sleep 2
OPLOG=$RUN/phases.log bash "$HERE/lab_workload_b.sh" "/mnt/$VOL" $(( ROLL + 2 )) "$NSMALL"
sleep $(( ROLL * 2 + 2 ))
HT=$(ls "$BRICK/.glusterfs/changelogs/htime/" | head -1)
START=${HT#HTIME.}
python3 "$LABDIR/gfcl_process.py" history "$BRICK" "$RUN/hist-work" "$RUN/processed" \
    --start "$START" > "$RUN/history.out" 2>&1 || echo "history rc=$?"
cat "$RUN/history.out"
if [ "$ENC" = binary ]; then
    "$LABDIR/history_each.sh" "$BRICK" "$RUN/each" "$RUN/processed-each" "$OUT/binary-parse-status.tsv"
fi
mkdir -p "$OUT/raw/htime" "$OUT/processed"
find "$BRICK/.glusterfs/changelogs" -type f -name 'CHANGELOG.*' -exec cp -p {} "$OUT/raw/" \;
cp -p "$BRICK"/.glusterfs/changelogs/htime/HTIME.* "$OUT/raw/htime/"
if [ "$ENC" = binary ]; then
    cp -p "$RUN"/processed-each/CHANGELOG.* "$OUT/processed/" 2>/dev/null || true
else
    cp -p "$RUN"/processed/CHANGELOG.* "$OUT/processed/" 2>/dev/null || true
fi
python3 "$LABDIR/handles.py" "$BRICK" "$OUT/handles.tsv" "$OUT/gfid-tree.tsv"
cp "$RUN/phases.log" "$OUT/phases.log"
gluster volume get "$VOL" all | grep -E '^changelog\.' > "$OUT/volume-options.txt"
echo "captured $(ls "$OUT/raw" | grep -c CHANGELOG) raw, $(ls "$OUT/processed" | wc -l) processed into $OUT"
