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
#   trials-pool.tar.gz     the same for the pool's trials
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
#   - `<name> pool <command>` puts a trial in the pool, and `@pool <gpu>x<workers>[+<seconds>] ...`
#     (e.g. `@pool 0x4 1x3+90`: GPU 1's three start after 90 s) starts that many pool workers on each
#     GPU: each takes the next unclaimed pool trial
#     in plan order when its last one ends, so the GPUs stay busy to the end whatever the trials'
#     lengths (put the longest first). A pool trial's output is in <name>/1.log, its GPU in <name>/gpu.
# Every trial's output is in <queue>/<n>.log; `#` starts a comment.
set -uo pipefail
root=$(pwd)
trials=${TRIALS_DIR:-/tmp/trials}
copies="$trials-run" # the bundle and this script as the queues run them
poll=${TRIALS_POLL_SECONDS:-2} # how often watch and stop look whether every trial has ended
self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/trials.sh

die() { echo "trials.sh: $*" >&2; exit 2; }

# Runs one trial: its command in the bundle folder with STORE and QUEUE_DIR set, output to <dir>/<n>.log.
# `child` is global: the caller's SIGTERM trap forwards the signal to it.
run_trial() {
  local dir=$1 index=$2 command=$3
  export QUEUE_DIR="$dir" STORE="$dir/mlruns"
  mkdir -p "$dir"
  local log="$dir/$index.log"
  case $command in
    train\ *) command="node interleave.mjs $command --set tracking.uri=$STORE" ;;
    eval-last\ *) command="node interleave.mjs eval \"\$(dirname \"\$(ls -td $STORE/*/*/artifacts | head -1)\")\" ${command#eval-last }" ;;
  esac
  echo "# $(date -u +%FT%TZ) $command" >"$log"
  bash -c "$command" >>"$log" 2>&1 &
  child=$!
  wait "$child"; local rc=$?
  # wait returns early when the trap fires; wait again for the child to finish its checkpoint.
  while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
  echo "# $(date -u +%FT%TZ) exit $rc" >>"$log"
  child=
}

# What every queue and pool worker runs under: the bundle folder, the checkout, the backend.
enter_bundle() {
  export CHECKOUT="$root"
  # Every trial on the GPU, or an error: never a silent fall back to a CPU backend.
  export INTERLEAVE_BACKEND=${TRIALS_BACKEND:-webgpu}
  stopping=0 child=
  trap 'stopping=1; [ -n "${child:-}" ] && kill -TERM "$child" 2>/dev/null' TERM
  cd "$1" || exit 1
}

# One queue: its trials in order. Stops after the running trial on SIGTERM.
run_queue() {
  local queue=$1 index=0
  enter_bundle "$2"
  mkdir -p "$trials/$queue"
  while read -r name gpu command; do
    [ "$name" = "$queue" ] && [ "$gpu" != pool ] || continue
    [ "$stopping" = 1 ] && break
    index=$((index + 1))
    run_trial "$trials/$queue" "$index" "$command"
  done <"$trials/plan"
  echo "done $(date -u +%FT%TZ)" >"$trials/$queue/finished"
}

# One pool worker on GPU $1: claims the pool's trials in plan order, one at a time, until none is
# left (a claim is a mkdir, atomic between the workers of every GPU).
run_pool_worker() {
  local gpu=$1 worker=$2
  enter_bundle "$3"
  mkdir -p "$trials/.claims"
  # A delayed start leaves the GPU to a queue's first trials (a benchmark) for that long.
  [ "$4" -gt 0 ] && { sleep "$4" & child=$!; wait "$child"; child=; }
  while read -r name kind command; do
    [ "$kind" = pool ] || continue
    [ "$stopping" = 1 ] && break
    mkdir "$trials/.claims/$name" 2>/dev/null || continue
    mkdir -p "$trials/$name" && echo "$gpu" >"$trials/$name/gpu"
    run_trial "$trials/$name" 1 "$command"
    echo "done $(date -u +%FT%TZ)" >"$trials/$name/finished"
  done <"$trials/plan"
  echo "done $(date -u +%FT%TZ)" >"$trials/pool-$gpu-$worker.finished"
}

# The newest progress, evaluation and final lines of a trial's log.
latest_lines() { grep -aE 'step [0-9]+/|eval @|final|accuracy|Error|error' "$1" | tail -"$2" | cut -c1-220; }

report() {
  echo "== $(date -u +%T) trials in $trials"
  nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader 2>/dev/null | sed 's/^/gpu /'
  local queue name
  for queue in $(queues); do
    local dir="$trials/$queue" total last
    total=$(awk -v q="$queue" '$1 == q && $2 != "pool"' "$trials/plan" | wc -l)
    last=$(ls "$dir"/*.log 2>/dev/null | sed 's/.*\///; s/\.log$//' | sort -n | tail -1)
    local state=running
    [ -f "$dir/finished" ] && state=finished
    echo "-- $queue: trial ${last:-0} of $total, $state"
    [ -n "$last" ] && latest_lines "$dir/$last.log" 3
  done
  for name in $(pool_trials); do
    local dir="$trials/$name"
    if [ ! -d "$trials/.claims/$name" ]; then echo "-- $name (pool): waiting"
    elif [ -f "$dir/finished" ]; then echo "-- $name (pool): finished on GPU $(cat "$dir/gpu"), $(tail -1 "$dir/1.log" | sed 's/^# [^ ]* //')"; latest_lines "$dir/1.log" 1
    else echo "-- $name (pool): running on GPU $(cat "$dir/gpu" 2>/dev/null)"; latest_lines "$dir/1.log" 2
    fi
  done
}

# Queue names (trials on a named GPU, in order), pool trial names, and pool workers
# ("<gpu> <k> <seconds before it starts>").
queues() { awk '!/^[[:space:]]*(#|@|$)/ && $2 != "pool" { if (!seen[$1]++) print $1 }' "$trials/plan"; }
pool_trials() { awk '!/^[[:space:]]*(#|@|$)/ && $2 == "pool" { print $1 }' "$trials/plan"; }
pool_workers() {
  awk '$1 == "@pool" { for (i = 2; i <= NF; i++) { split($i, spec, /[x+]/); for (k = 1; k <= spec[2]; k++) print spec[1], k, spec[3] + 0 } }' "$trials/plan"
}

# Packs `names` (folders under the trials folder, with any extra files) into <archive>, or one
# archive per name where that passes 15 MiB (the device tool returns at most 8 files, each under
# 16 MiB; a long run's metric files alone can be 9 MiB).
pack_group() {
  local archive=$1; shift
  local names=() extras=() item
  for item in "$@"; do if [ -d "$trials/$item" ]; then names+=("$item"); elif [ -e "$trials/$item" ]; then extras+=("$item"); fi; done
  [ ${#names[@]} -gt 0 ] || return 0
  tar -czf "$archive" -C "$trials" --exclude='*/checkpoint' --exclude='*/checkpoint-*' "${extras[@]}" "${names[@]}" 2>/dev/null
  if [ "$(stat -c %s "$archive")" -gt $((15 * 1048576)) ]; then
    rm -f "$archive"
    for item in "${names[@]}"; do
      tar -czf "$OUT/trials-$item.tar.gz" -C "$trials" --exclude='*/checkpoint' --exclude='*/checkpoint-*' "$item" 2>/dev/null
    done
  fi
}

pack() {
  [ -n "${OUT:-}" ] || return 0
  rm -f "$OUT"/trials-*.tar.gz "$OUT"/checkpoints.tar.gz
  local gpu queue
  # One archive per GPU for its queues, one for the pool's trials.
  for gpu in $(awk '!/^[[:space:]]*(#|@|$)/ && $2 != "pool" { if (!seen[$2]++) print $2 }' "$trials/plan"); do
    local mine=()
    for queue in $(queues); do
      [ "$(awk -v q="$queue" '$1 == q { print $2; exit }' "$trials/plan")" = "$gpu" ] && mine+=("$queue" "$queue.runner.log")
    done
    pack_group "$OUT/trials-gpu$gpu.tar.gz" plan "${mine[@]}"
  done
  # shellcheck disable=SC2046
  pack_group "$OUT/trials-pool.tar.gz" plan $(cd "$trials" && ls pool-*.runner.log 2>/dev/null) $(pool_trials)
  local keep
  keep=$(awk '$1 == "@checkpoints" { for (i = 2; i <= NF; i++) print $i }' "$trials/plan")
  if [ -n "$keep" ]; then
    # shellcheck disable=SC2086
    (cd "$trials" && find $keep -type d -name 'checkpoint' -print0 2>/dev/null | tar -czf "$OUT/checkpoints.tar.gz" --null -T -)
  fi
  ls -l "$OUT" | awk 'NR > 1 { printf "packed %s %d KiB\n", $NF, $5 / 1024 }'
}

all_finished() {
  local queue gpu k
  for queue in $(queues); do [ -f "$trials/$queue/finished" ] || return 1; done
  while read -r gpu k _; do [ -z "$gpu" ] || [ -f "$trials/pool-$gpu-$k.finished" ] || return 1; done < <(pool_workers)
}

# Says, before anything starts, which line of the plan cannot be run.
check_plan() {
  local plan=$1 bad
  bad=$(awk '
    function fail(message) { print FILENAME ":" FNR ": " message; exit }
    /^[[:space:]]*(#|$)/ { next }
    $1 == "@pool" {
      if (NF < 2) fail("@pool needs <gpu>x<workers>[+<seconds>], e.g. @pool 0x4 1x4+90")
      for (i = 2; i <= NF; i++) if ($i !~ /^[0-9]+x[1-9][0-9]*(\+[0-9]+)?$/) fail("@pool needs <gpu>x<workers>[+<seconds>], e.g. 0x4, got: " $i)
      workers = 1; next
    }
    /^@/ { next }
    !(($2 ~ /^[0-9]+$/ || $2 == "pool") && NF >= 3) { fail("expected <queue> <gpu index> <command> or <name> pool <command>, got: " $0) }
    $2 == "pool" { if ($1 in queue || $1 in pooled) fail("the pool trial name " $1 " is used before: each pool trial needs its own"); pooled[$1] = 1; pools++; next }
    { if ($1 in pooled) fail("the queue name " $1 " is a pool trial name above"); queue[$1] = 1 }
    END { if (pools > 0 && !workers) print FILENAME ": pool trials but no @pool line says how many workers run them on which GPU" }
  ' "$plan")
  [ -z "$bad" ] || die "$bad"
}

command=${1:-}
case $command in
  launch)
    plan=${2:-}
    [ -f "$plan" ] || die "no plan file '$plan'"
    [ -f "${3:-.devcarry-gpu}/setup.sh" ] || die "no bundle in '${3:-.devcarry-gpu}' (scripts/pack-gpu.sh writes one)"
    bundle=$(cd "${3:-.devcarry-gpu}" && pwd)
    check_plan "$plan"
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
    while read -r gpu k delay; do
      [ -n "$gpu" ] || continue
      setsid "$bundle/one-gpu.sh" "$gpu" bash "$self" run-pool "$gpu" "$k" "$bundle" "$delay" </dev/null >"$trials/pool-$gpu-$k.runner.log" 2>&1 &
      echo "$!" >"$trials/pool-$gpu-$k.pid"
    done < <(pool_workers)
    sleep "${4:-60}"
    report; pack ;;
  run-queue) run_queue "$2" "$3" ;;
  run-pool) run_pool_worker "$2" "$3" "$4" "${5:-0}" ;;
  watch)
    deadline=$(($(date +%s) + ${2:-60}))
    while [ "$(date +%s)" -lt "$deadline" ] && ! all_finished; do sleep "$poll"; done
    report; pack ;;
  stop)
    for pid_file in "$trials"/*.pid; do kill -TERM -- "-$(cat "$pid_file")" 2>/dev/null; done
    deadline=$(($(date +%s) + ${2:-30}))
    while [ "$(date +%s)" -lt "$deadline" ] && ! all_finished; do sleep "$poll"; done
    report; pack ;;
  *) die "usage: trials.sh launch <plan> [bundle] | watch <seconds> | stop <grace-seconds>" ;;
esac
