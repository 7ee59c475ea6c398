#!/usr/bin/env bash
# The tutorial way, scripted: one directory, myid and zoo.cfg per node, start every JVM, poll `srvr` every
# 20 ms until every node serves and exactly one leader exists. The benchmark's contender for `zkdev up`.
#
# usage: baseline.sh DIR VOTERS OBSERVERS PORT_OFFSET TICK INIT SYNC ADMIN(0|1) [JVM FLAGS...]
# Prints "serving_ms=<ms from the first JVM start to all serving>" and writes DIR/pids.
# Uses Debian's ZooKeeper (the same jars zkdev finds), log4j to a file per node.
set -euo pipefail
dir=$1 voters=$2 observers=$3 off=$4 tick=$5 init=$6 sync=$7 admin=$8
shift 8
jvm_flags=("$@")
j=/usr/share/java
cp="$j/zookeeper.jar:$j/zookeeper-jute.jar:$j/slf4j-log4j12.jar:$j/log4j-1.2.jar"
[ -f "$j/servlet-api.jar" ] && cp="$cp:$j/servlet-api.jar"
total=$((voters + observers))

servers=""
for i in $(seq 1 "$total"); do
  line="server.$i=127.0.0.1:$((2880 + i + off)):$((3880 + i + off))"
  [ "$i" -gt "$voters" ] && line="$line:observer"
  servers="$servers$line"$'\n'
done

for i in $(seq 1 "$total"); do
  n="$dir/node$i"
  mkdir -p "$n/data" "$n/logs" "$n/conf"
  echo "$i" > "$n/data/myid"
  {
    echo "tickTime=$tick"; echo "initLimit=$init"; echo "syncLimit=$sync"
    echo "dataDir=$n/data"; echo "clientPort=$((2180 + i + off))"; echo "clientPortAddress=127.0.0.1"
    echo "4lw.commands.whitelist=srvr"; echo "standaloneEnabled=false"
    if [ "$admin" = 1 ]; then
      echo "admin.serverAddress=127.0.0.1"; echo "admin.serverPort=$((8080 + i + off))"
    else
      echo "admin.enableServer=false"
    fi
    [ "$i" -gt "$voters" ] && echo "peerType=observer"
    printf '%s' "$servers"
  } > "$n/conf/zoo.cfg"
  printf 'log4j.rootLogger=INFO, F\nlog4j.appender.F=org.apache.log4j.FileAppender\nlog4j.appender.F.File=%s\nlog4j.appender.F.layout=org.apache.log4j.PatternLayout\nlog4j.appender.F.layout.ConversionPattern=%%d %%-5p %%c{1} - %%m%%n\n' \
    "$n/logs/zookeeper.log" > "$n/conf/log4j.properties"
done

start=$(date +%s%N)
: > "$dir/pids"
for i in $(seq 1 "$total"); do
  n="$dir/node$i"
  java -Dlog4j.configuration="file:$n/conf/log4j.properties" "${jvm_flags[@]}" -cp "$cp" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$n/conf/zoo.cfg" > "$n/logs/out.log" 2>&1 &
  echo $! >> "$dir/pids"
done

srvr_mode() { # port -> the Mode line's value, or nothing
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 0
  printf srvr >&3
  timeout 1 cat <&3 | sed -n 's/^Mode: //p'
  exec 3>&- 3<&-
}

deadline=$((start + 120000000000))
while :; do
  serving=0 leaders=0
  for i in $(seq 1 "$total"); do
    m=$(srvr_mode $((2180 + i + off)))
    [ -n "$m" ] && serving=$((serving + 1))
    [ "$m" = leader ] && leaders=$((leaders + 1))
  done
  if [ "$serving" -eq "$total" ] && [ "$leaders" -eq 1 ]; then break; fi
  if [ "$(date +%s%N)" -gt "$deadline" ]; then echo "baseline: not serving after 120 s" >&2; exit 1; fi
  sleep 0.02
done
echo "serving_ms=$(( ($(date +%s%N) - start) / 1000000 ))"
