#!/bin/bash
# usage: benchmarks/rsswatch.sh LIMIT_GB command args...
# Runs the command in a process group of its own, samples the resident memory of the whole
# group every second (to $RSSLOG too, if set), kills the group above LIMIT_GB (GiB) and
# prints the peak at the end: a large run on a shared machine without an out-of-memory kill
# that takes other work with it.
set -u
limit_kb=$(python3 -c "print(int(float('$1') * 1024 * 1024))")
shift
setsid "$@" &
pid=$!  # setsid's child leads the new group: the group id is its pid
peak=0
group_rss() { ps -o rss= -g "$1" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
while kill -0 "$pid" 2>/dev/null; do
  rss=$(group_rss "$pid")
  [ "$rss" -gt "$peak" ] && peak=$rss
  [ -n "${RSSLOG:-}" ] && echo "$(date +%T) $((rss / 1024))" >> "$RSSLOG"
  if [ "$rss" -gt "$limit_kb" ]; then
    echo "rsswatch: $((rss / 1024)) MB above the limit, killing the group" >&2
    kill -KILL -- "-$pid"
  fi
  sleep 1
done
wait "$pid"
rc=$?
echo "rsswatch: peak $((peak / 1024)) MB, exit $rc" >&2
exit $rc
