#!/bin/sh
# Fetches Apache Kafka (broker and its runtime dependencies) from Maven
# Central with the machine's Maven, caches the jars, and prints the path of
# a file holding the Java classpath.
#
#   tests/kafka/kafka-fetch.sh            -> .../kafka-3.9.1/classpath
#
# Why Maven and not the release tarball: the machines this project runs on
# reach package registries only, and Maven Central is one of them; the
# machine's Maven settings decide how it is reached (no URL here).
#
# Environment:
#   SB_KAFKA_VERSION  broker version (default 3.9.1: librdkafka 2.0.2, the
#                     Debian 12 client, predates Kafka 4.0's removal of old
#                     protocol versions; DESIGN.md section 11)
#   SB_KAFKA_CACHE    cache directory (default
#                     $HOME/.cache/sharebus/kafka-$SB_KAFKA_VERSION)
#
# Idempotent: when the cache is complete it prints the path and exits
# without starting Maven.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/common.sh
. "$here/common.sh"

version=${SB_KAFKA_VERSION:-3.9.1}
cache=${SB_KAFKA_CACHE:-${HOME:-/root}/.cache/sharebus/kafka-$version}
scala=2.13
# The logging backend the Kafka distribution ships in its libs/ (the Maven
# artifact leaves it to the user): slf4j-reload4j of the same version as
# the slf4j-api Kafka depends on (found below), and this reload4j.
reload4j_version=${SB_RELOAD4J_VERSION:-1.2.25}
stamp="kafka_$scala:$version reload4j:$reload4j_version"
# The jar paths end up in a ':'-separated classpath and in shell files.
case $cache in
*[!A-Za-z0-9._/+-]*) sb_die "SB_KAFKA_CACHE '$cache': use letters, digits and ._/+- only" ;;
esac

# A complete cache: the stamp names the same artifacts and every jar of the
# classpath is present.
cache_ok() {
        [ -f "$cache/stamp" ] && [ -f "$cache/classpath" ] || return 1
        [ "$(cat "$cache/stamp")" = "$stamp" ] || return 1
        old_ifs=$IFS
        IFS=:
        # shellcheck disable=SC2046 # split on ':' on purpose
        set -- $(cat "$cache/classpath")
        IFS=$old_ifs
        [ $# -gt 0 ] || return 1
        for jar in "$@"; do
                [ -f "$jar" ] || return 1
        done
}

if cache_ok; then
        echo "$cache/classpath"
        exit 0
fi

sb_need java:openjdk-17-jre-headless mvn:maven
mkdir -p "$cache"

# Two fetches of the same version at once (two build trees testing in
# parallel) would race on lib/: take a lock, then look again.
exec 9>"$cache/.lock"
flock -w 900 9 || sb_die "'$cache/.lock' still held after 900 s"
if cache_ok; then
        echo "$cache/classpath"
        exit 0
fi

work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

# pom(extra dependencies...) writes a throw-away project whose only purpose
# is to make Maven resolve Kafka's runtime dependency tree.
pom() {
        {
                cat <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>sharebus.tests</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$scala</artifactId>
      <version>$version</version>
    </dependency>
EOF
                for dep in "$@"; do
                        g=${dep%%:*}
                        rest=${dep#*:}
                        cat <<EOF
    <dependency>
      <groupId>$g</groupId>
      <artifactId>${rest%%:*}</artifactId>
      <version>${rest#*:}</version>
    </dependency>
EOF
                done
                echo '  </dependencies>'
                echo '</project>'
        } >"$work/pom.xml"
}

# mvn GOAL ARGS... runs Maven quietly on the throw-away project, bounded in
# time, and shows its output only when it fails.
mvn_run() {
        if ! timeout 900 mvn -B -q -f "$work/pom.xml" "$@" >"$work/mvn.log" 2>&1; then
                cat "$work/mvn.log" >&2
                sb_die "Maven could not resolve org.apache.kafka:kafka_$scala:$version" \
                        "(see above; the machine's Maven settings decide how" \
                        "Maven Central is reached)"
        fi
}

sb_log "resolving org.apache.kafka:kafka_$scala:$version with Maven"
# Pass 1: which slf4j-api does this Kafka use? The backend must match it.
pom
mvn_run dependency:build-classpath -Dmdep.includeScope=runtime \
        -Dmdep.outputFile="$work/cp1"
slf4j=$(tr ':' '\n' <"$work/cp1" | sed -n 's|.*/slf4j-api-\([0-9][^/]*\)\.jar$|\1|p')
[ -n "$slf4j" ] || sb_die "no slf4j-api in Kafka $version's dependencies"

# Pass 2: Kafka plus the backend, copied into the cache so that the cache
# does not depend on ~/.m2 staying as it is.
pom "org.slf4j:slf4j-reload4j:$slf4j" "ch.qos.reload4j:reload4j:$reload4j_version"
mvn_run dependency:copy-dependencies -Dmdep.includeScope=runtime \
        -DoutputDirectory="$work/lib"

rm -rf "${cache:?}/lib"
mv "$work/lib" "$cache/lib"
cp "$work/pom.xml" "$cache/pom.xml"
# Globs sort: the classpath is the same from one fetch to the next.
set -- "$cache"/lib/*.jar
printf '%s\n' "$@" | paste -s -d: - >"$cache/classpath"
echo "$stamp" >"$cache/stamp"
sb_log "cached $# jars in $cache/lib"
echo "$cache/classpath"
