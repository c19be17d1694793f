#!/bin/bash
# streamsync lab workload "B": hostile names and namespace churn on a GlusterFS
# FUSE mount whose changelog translator is on.  Different from the lab's
# workload_a.sh: deep trees, names with space/LF/TAB/CR/backslash/%/UTF-8 and
# invalid UTF-8 bytes, 255-byte names, cross-directory hard links, renames over
# existing files and empty dirs, renames of populated dirs, every symlink
# flavour, fifos, attribute and user.* xattr changes, truncate/append/sparse
# writes, rm -rf of trees, mkdir -p/rmdir churn, a few-MiB file and many small
# files.
#
#   lab_workload_b.sh MOUNTPOINT [PAUSE_SECONDS] [NSMALL]
#
# Phases are separated by `sleep PAUSE` (> changelog.rollover-time) so their
# records land in different CHANGELOG.<ts> files; phase start times go to
# $OPLOG (default /dev/null).  Deterministic apart from timestamps/gfids.
set -euo pipefail
M=$1; PAUSE=${2:-4}; NSMALL=${3:-120}
OPLOG=${OPLOG:-/dev/null}
cd "$M"
phase() { echo "$(date +%s.%N) $*" >> "$OPLOG"; }
pause() { sleep "$PAUSE"; }
L255=$(printf 'L%.0s' $(seq 1 255))                 # 255-byte ASCII name
U255=$(printf 'é%.0s' $(seq 1 127))x                 # 127*2+1 = 255 bytes UTF-8
BAD=$'bad\xff\xfe-latin1-caf\xe9'                    # invalid UTF-8
CR=$'carriage\rreturn'
BS='back\slash\\end'
NL=$'two\nlines'
TAB=$'tab\tbed'

phase B1 trees
mkdir -p t/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/d13/d14/d15/d16/d17/d18/d19/d20
mkdir -p "sp ace/%25 pct%/$NL" "$TAB" "$CR" "$BS" "ütf8_名前" "$BAD" "$L255"
mkdir -p churn/a/b/c victim/sub keep
echo deep > t/d1/d2/d3/d4/d5/d6/d7/d8/d9/d10/d11/d12/d13/d14/d15/d16/d17/d18/d19/d20/leaf
echo a > "sp ace/%25 pct%/$NL/$NL"
echo b > "$TAB/$TAB.txt"
echo c > "$CR/$CR"
echo d > "$BS/$BS"
echo e > "ütf8_名前/$U255"
echo f > "$BAD/$BAD"
echo g > "$L255/$L255"
echo h > keep/over_src
echo i > keep/over_dst
echo j > victim/sub/x
echo k > victim/y
mkdir emptydst
mkdir movedir; echo m > movedir/m1; mkdir movedir/inner; echo n > movedir/inner/n1
pause

phase B2 data
dd if=/dev/urandom of=big.bin bs=1M count=3 status=none
head -c 5000 /dev/zero | tr '\0' 'z' > grow.txt
echo append >> grow.txt
truncate -s 2M sparse.img
printf 'HOLE' | dd of=sparse.img bs=1 seek=1500000 conv=notrunc status=none
truncate -s 10 "$TAB/$TAB.txt"
echo more >> "$BAD/$BAD"
for i in $(seq 1 "$NSMALL"); do printf 'small %d\n' "$i" > "keep/s$(printf %03d "$i")"; done
pause

phase B2d data-only                                  # writes to existing files only: D records only
echo again >> grow.txt
printf 'X' | dd of=big.bin bs=1 seek=2000000 conv=notrunc status=none
printf 'Y' | dd of=sparse.img bs=1 seek=100 conv=notrunc status=none
pause

phase B3 links
ln keep/over_src "t/d1/hard link 1"
ln keep/over_src "$BAD/hard"
ln -s keep/over_src rel_link
ln -s /nonexistent/target dangling
ln -s /etc/hostname abs_link
ln -s "../$CR" "$TAB/to_cr"
ln -s first replaced_link
ln -sfn second replaced_link
mkfifo pipe1
mkfifo -m 0640 "sp ace/pipe 2"
pause

phase B4 attrs
chmod 0640 keep/s001
chmod 4755 keep/s002
chmod 1777 churn
chown 1000:1000 keep/s003
chown 1001:1002 "$BAD/$BAD"
chown -h 1000:1001 rel_link
touch -d '2019-05-06 07:08:09' keep/s004
touch -m -d '2022-02-02 02:02:02' "$L255/$L255"
setfattr -n user.tag -v blue keep/s005
setfattr -n user.raw -v 0x00ff00 keep/s006
setfattr -n user.tmp -v gone keep/s007
setfattr -x user.tmp keep/s007
setfattr -n user.dir -v yes t
pause

phase B5 renames
mv keep/over_src keep/over_dst                       # rename over an existing file
mv -T movedir emptydst                               # populated dir over an empty dir
mv "$BAD/$BAD" "$CR/renamed$BAD"                     # cross-dir, odd names
mv "$L255/$L255" "t/$L255"
mv t/d1/d2/d3 "sp ace/d3 moved"                      # dir with a deep subtree
mv "sp ace/%25 pct%/$NL" "sp ace/moved$NL"           # dir whose name has LF
mkdir emptydir2; mv -T "sp ace/%25 pct%" emptydir2    # and another over a fresh empty dir
mv pipe1 "$TAB/pipe1 moved"
mv replaced_link "$BS/link moved"
pause

phase B6 deletes
rm -rf victim                                        # rm -rf of a tree
rm -rf "sp ace/d3 moved/d4/d5/d6"
rm keep/s010 keep/s011 keep/s012
rm "t/d1/hard link 1"                                # one hard link of three
rm dangling
for k in 1 2 3; do mkdir -p churn/x/y/z; echo $k > churn/x/y/z/f; rm -rf churn/x; done
mkdir churn/tmpdir; rmdir churn/tmpdir
echo t > tmpfile; rm tmpfile
pause

phase B7 mixed
ln -sfn /etc/passwd abs_link                         # replace an absolute symlink
truncate -s 1 big.bin; truncate -s 100000 big.bin
cp -a keep/s020 "ütf8_名前/copy"
mv "ütf8_名前" "ütf8_renamed_名前"
for i in $(seq 30 40); do mv "keep/s0$i" "churn/a/b/c/s0$i"; done
echo final > keep/over_dst
pause

phase B8 replace-in-one-journal                      # create + rename over it, same journal
echo a > as_f; echo b > as_g; mv as_g as_f           # an editor's atomic save
mkdir dd1 dd2; echo x > dd2/inner; mv -T dd2 dd1     # fresh empty dir replaced by a full one
ln -s x sl1; ln -s y sl2; mv sl2 sl1                 # symlink over symlink
phase END
pause
pause
