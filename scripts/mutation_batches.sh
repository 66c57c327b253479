#!/usr/bin/env bash
# Continue a mutation run in a seeded random order (issue 14), for packages too slow to run
# whole in one sitting:
#
#   scripts/mutation_batches.sh SCRATCH_DIR [BATCH] [JOBS]
#
# SCRATCH_DIR is a tree made by scripts/mutation.sh (e.g. /tmp/harborbench-mutation/compare).
# The mutants listed in SCRATCH_DIR/survivors.txt (if any) are run again first; then every
# mutant not yet checked is shuffled with a fixed seed and run in batches of BATCH (default
# 60), so whatever is done when the run is stopped is a uniform random sample of the rest.
# The order is kept in SCRATCH_DIR/order.txt; progress in SCRATCH_DIR/batches.log.
set -u
cd "${1:?usage: scripts/mutation_batches.sh SCRATCH_DIR [BATCH] [JOBS]}"
batch="${2:-60}"; jobs="${3:-2}"
mutmut="${MUTMUT:-mutmut}"
if [ -s survivors.txt ]; then
  echo "$(date +%T) start survivors ($(wc -l < survivors.txt))" >> batches.log
  "$mutmut" run --max-children "$jobs" $(cat survivors.txt) > run-survivors.log 2>&1
fi
"$mutmut" results --all true 2>/dev/null | awk '/not checked/ {sub(":","",$1); print $1}' \
  | python3 -c "import random, sys; names = sys.stdin.read().split(); random.Random(14).shuffle(names); print('\n'.join(names))" \
  > order.txt
echo "$(date +%T) $(wc -l < order.txt) mutants to run" >> batches.log
rm -f batch.*
split -l "$batch" -d -a 3 order.txt batch.
for f in batch.*; do
  echo "$(date +%T) start $f" >> batches.log
  "$mutmut" run --max-children "$jobs" $(cat "$f") > "run-$f.log" 2>&1
done
echo "$(date +%T) all done" >> batches.log
