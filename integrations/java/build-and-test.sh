#!/usr/bin/env bash
# Build the JUnit 5 extension (dev.zkdev.junit) with javac against Debian's jars (no Maven), then run its tests
# with the JUnit console launcher against real ensembles. Needs `apt-get install junit5 zookeeper`
# (scripts/install-deps --tests). Output: target/java/zkdev-junit.jar. Extra arguments go to the launcher.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/java"
jars=/usr/share/java
for jar in junit-jupiter-api junit-platform-commons opentest4j apiguardian-api junit-platform-console-standalone \
    zookeeper zookeeper-jute; do
  [ -f "$jars/$jar.jar" ] || { echo "error: $jars/$jar.jar is missing; run scripts/install-deps --tests" >&2; exit 3; }
done
api="$jars/junit-jupiter-api.jar:$jars/junit-platform-commons.jar:$jars/opentest4j.jar:$jars/apiguardian-api.jar"
# ZooKeeper's client: zookeeper.jar's manifest brings its dependencies (Netty, SLF4J, ...) along.
zk="$jars/zookeeper.jar:$jars/zookeeper-jute.jar"

rm -rf "$out/classes" "$out/test-classes"
mkdir -p "$out/classes" "$out/test-classes"
javac -Xlint:all -Werror -d "$out/classes" -cp "$api" $(find "$here/src/main/java" -name '*.java')
jar --create --file "$out/zkdev-junit.jar" -C "$out/classes" .
javac -Xlint:all,-processing,-path -d "$out/test-classes" -cp "$out/zkdev-junit.jar:$api:$zk" \
  $(find "$here/src/test/java" -name '*.java')

export ZKDEV_BIN="${ZKDEV_BIN:-$root/target/debug/zkdev}"
cd "$root"
colors=()
[ -t 1 ] || colors=(--disable-ansi-colors)
log="$out/junit.log"
status=0
java -jar "$jars/junit-platform-console-standalone.jar" \
  --class-path "$out/test-classes:$out/zkdev-junit.jar:$zk" --scan-class-path "$out/test-classes" \
  --disable-banner --details=tree "${colors[@]}" "$@" 2>&1 | tee "$log" || status=$?
# The launcher's summary as one plain closing line.
passed=$(sed -n 's/.* \([0-9]*\) tests successful.*/\1/p' "$log")
failed=$(sed -n 's/.* \([0-9]*\) tests failed.*/\1/p' "$log")
echo "junit: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
