#!/usr/bin/env bash
# trials.sh: runs a plan of Interleave trials on a GPU machine reached through short, separate calls
# (the lent H200: no Node, no network, at most 10 minutes a call, and the machine is kept only while
# calls follow each other). The trials run in the background between calls; every call ends by
# packing what they wrote, so a stop or a lost machine loses at most one call's progress. The calls
# must follow each other within the machine's idle release (30 s there): a new machine is bare.
#
#   scripts/gpu/trials.sh launch <plan> [bundle-dir]   start the plan (bundle: .devcarry-gpu, from
#                                                      scripts/pack-gpu.sh), then report and pack
#   scripts/gpu/trials.sh watch <seconds>              wait (or until every queue is done), report, pack
#   scripts/gpu/trials.sh stop <grace-seconds>         SIGTERM every trial (each saves a checkpoint and
#                                                      stops), wait up to the grace, report, pack
#
# Run from the checkout's root. Results go to $OUT (the device tool's folder) when it is set:
#   trials-gpu<g>.tar.gz   the plan and every log and MLflow store of GPU g's queues, without
#                          checkpoints (one trials-<queue>.tar.gz per queue where that passes 15 MiB)
#   checkpoints.tar.gz     the last checkpoints of the queues named by the plan's `@checkpoints` line
#
# A plan is a text file, one trial per line, `<queue> <gpu> <command>`:
#   - trials of one queue run one after the other; queues run side by side, each on the GPU it names
#     (through one-gpu.sh, so that Dawn sees that GPU alone);
#   - `train <config> [--set ...]` runs the CLI's train with the queue's store as tracking.uri;
#     `eval-last <args>` evaluates the queue's latest run (`interleave eval <run-dir> <args>`);
#     anything else is a bash command, run in the bundle's folder with $STORE (the queue's MLflow
#     store), $QUEUE_DIR (its folder, packed with the logs) and $CHECKOUT (the checkout) set;
#   - `@checkpoints <queue> ...` names the queues whose checkpoints come back;
#   - `@resume <archive>` (relative to the checkout) is unpacked into the trials' folder before the
#     start: a previous call's trials archive + checkpoints.tar.gz, for `train ... --resume <run-id>`.
# Every trial's output is in <queue>/<n>.log; `#` starts a comment.
set -uo pipefail
root=$(pwd)
trials=${TRIALS_DIR:-/tmp/trials}
copies="$trials-run" # the bundle and this script as the queues run them
self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/trials.sh

die() { echo "trials.sh: $*" >&2; exit 2; }

# One queue: its trials in order, in the bundle folder. Stops after the running trial on SIGTERM.
run_queue() {
  local queue=$1 bundle=$2 index=0 stopping=0 child
  export QUEUE_DIR="$trials/$queue" STORE="$trials/$queue/mlruns" CHECKOUT="$root"
  # Every trial on the GPU, or an error: never a silent fall back to a CPU backend.
  export INTERLEAVE_BACKEND=${TRIALS_BACKEND:-webgpu}
  mkdir -p "$QUEUE_DIR"
  trap 'stopping=1; [ -n "${child:-}" ] && kill -TERM "$child" 2>/dev/null' TERM
  cd "$bundle" || exit 1
  while read -r name _gpu command; do
    [ "$name" = "$queue" ] || continue
    [ "$stopping" = 1 ] && break
    index=$((index + 1))
    local log="$QUEUE_DIR/$index.log"
    case $command in
      train\ *) command="node interleave.mjs $command --set tracking.uri=$STORE" ;;
      eval-last\ *) command="node interleave.mjs eval \"\$(dirname \"\$(ls -td $STORE/*/*/artifacts | head -1)\")\" ${command#eval-last }" ;;
    esac
    { echo "# $(date -u +%FT%TZ) $command"; } >"$log"
    bash -c "$command" >>"$log" 2>&1 &
    child=$!
    wait "$child"; local rc=$?
    # wait returns early when the trap fires; wait again for the child to finish its checkpoint.
    while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
    echo "# $(date -u +%FT%TZ) exit $rc" >>"$log"
    child=
  done <"$trials/plan"
  echo "done $(date -u +%FT%TZ)" >"$QUEUE_DIR/finished"
}

report() {
  echo "== $(date -u +%T) trials in $trials"
  nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader 2>/dev/null | sed 's/^/gpu /'
  local queue
  for queue in $(queues); do
    local dir="$trials/$queue" total last
    total=$(awk -v q="$queue" '$1 == q' "$trials/plan" | wc -l)
    last=$(ls "$dir"/*.log 2>/dev/null | sed 's/.*\///; s/\.log$//' | sort -n | tail -1)
    local state=running
    [ -f "$dir/finished" ] && state=finished
    echo "-- $queue: trial ${last:-0} of $total, $state"
    # The newest progress, evaluation and final lines of the current trial.
    [ -n "$last" ] && grep -aE 'step [0-9]+/|eval @|final|accuracy|Error|error' "$dir/$last.log" | tail -3 | cut -c1-220
  done
}

queues() { awk '!/^[[:space:]]*(#|@|$)/ { if (!seen[$1]++) print $1 }' "$trials/plan"; }

pack() {
  [ -n "${OUT:-}" ] || return 0
  rm -f "$OUT"/trials-*.tar.gz "$OUT"/checkpoints.tar.gz
  # One archive per GPU (the device tool returns at most 8 files, each under 16 MiB); a GPU whose
  # archive is larger (a long run's metric files) is packed one queue per archive instead.
  local gpu queue archive
  for gpu in $(awk '!/^[[:space:]]*(#|@|$)/ { if (!seen[$2]++) print $2 }' "$trials/plan"); do
    local mine=()
    for queue in $(queues); do
      [ "$(awk -v q="$queue" '$1 == q { print $2; exit }' "$trials/plan")" = "$gpu" ] && [ -d "$trials/$queue" ] && mine+=("$queue")
    done
    [ ${#mine[@]} -gt 0 ] || continue
    archive="$OUT/trials-gpu$gpu.tar.gz"
    tar -czf "$archive" -C "$trials" --exclude='*/checkpoint' --exclude='*/checkpoint-*' plan "${mine[@]/%/.runner.log}" "${mine[@]}" 2>/dev/null
    if [ "$(stat -c %s "$archive")" -gt $((15 * 1048576)) ]; then
      rm -f "$archive"
      for queue in "${mine[@]}"; do
        tar -czf "$OUT/trials-$queue.tar.gz" -C "$trials" --exclude='*/checkpoint' --exclude='*/checkpoint-*' "$queue" "$queue.runner.log" 2>/dev/null
      done
    fi
  done
  local keep
  keep=$(awk '$1 == "@checkpoints" { for (i = 2; i <= NF; i++) print $i }' "$trials/plan")
  if [ -n "$keep" ]; then
    # shellcheck disable=SC2086
    (cd "$trials" && find $keep -type d -name 'checkpoint' -print0 2>/dev/null | tar -czf "$OUT/checkpoints.tar.gz" --null -T -)
  fi
  ls -l "$OUT" | awk 'NR > 1 { printf "packed %s %d KiB\n", $NF, $5 / 1024 }'
}

all_finished() {
  local queue
  for queue in $(queues); do [ -f "$trials/$queue/finished" ] || return 1; done
}

command=${1:-}
case $command in
  launch)
    plan=${2:-}
    [ -f "$plan" ] || die "no plan file '$plan'"
    [ -f "${3:-.devcarry-gpu}/setup.sh" ] || die "no bundle in '${3:-.devcarry-gpu}' (scripts/pack-gpu.sh writes one)"
    bundle=$(cd "${3:-.devcarry-gpu}" && pwd)
    # A trial line is `<queue> <gpu index> <command>`: say which line is not, before starting anything.
    bad=$(awk '!/^[[:space:]]*(#|@|$)/ && !($2 ~ /^[0-9]+$/ && NF >= 3) { print FILENAME ":" FNR ": expected <queue> <gpu index> <command>, got: " $0; exit }' "$plan")
    [ -z "$bad" ] || die "$bad"
    [ -e "$trials" ] && die "$trials exists: one launch per machine (watch or stop it)"
    rm -rf "$copies"
    mkdir -p "$trials" && cp "$plan" "$trials/plan"
    resume=$(awk '$1 == "@resume" { for (i = 2; i <= NF; i++) print $i }' "$plan")
    for archive in $resume; do tar -xzf "$root/$archive" -C "$trials" || die "cannot unpack $archive"; done
    # The trials run from copies: each call replaces the carried bundle (and this script), and a
    # trial still loads files from it (batch workers, plugins).
    mkdir -p "$copies" && cp -a "$bundle" "$copies/bundle" && cp "$self" "$copies/trials.sh"
    bundle="$copies/bundle" self="$copies/trials.sh"
    # shellcheck disable=SC1091
    source "$bundle/setup.sh" || die "setup failed"
    for queue in $(queues); do
      gpu=$(awk -v q="$queue" '$1 == q { print $2; exit }' "$plan")
      rm -f "$trials/$queue/finished"
      setsid "$bundle/one-gpu.sh" "$gpu" bash "$self" run-queue "$queue" "$bundle" </dev/null >"$trials/$queue.runner.log" 2>&1 &
      echo "$!" >"$trials/$queue.pid"
    done
    sleep "${4:-60}"
    report; pack ;;
  run-queue) run_queue "$2" "$3" ;;
  watch)
    deadline=$(($(date +%s) + ${2:-60}))
    while [ "$(date +%s)" -lt "$deadline" ] && ! all_finished; do sleep 5; done
    report; pack ;;
  stop)
    for pid_file in "$trials"/*.pid; do kill -TERM -- "-$(cat "$pid_file")" 2>/dev/null; done
    deadline=$(($(date +%s) + ${2:-30}))
    while [ "$(date +%s)" -lt "$deadline" ] && ! all_finished; do sleep 2; done
    report; pack ;;
  *) die "usage: trials.sh launch <plan> [bundle] | watch <seconds> | stop <grace-seconds>" ;;
esac
