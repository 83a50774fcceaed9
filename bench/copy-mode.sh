#!/usr/bin/env bash
# What `dockerfile diff|apply --copy` costs against the default RUN --mount shape, on this engine:
# wall-clock build times and the disk the classic builder's intermediate images take.
#
# The pair: the runtime image's tree (a 101 MB Node app: node, its libraries, node_modules) as A,
# and the same with 20 .js files edited and one npm package removed as B, both `docker import`ed.
# Builds run one at a time, --no-cache; every image made here is removed at the end.
#
#   bash bench/copy-mode.sh            # needs dist/ (npm run build) and a docker engine
#
# Results: bench/RESULTS-copy-mode.md (copy the table printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER=${DELTAIMG_DOCKER:-/usr/bin/docker}
export DELTAIMG_DOCKER=$DOCKER
TAG=deltaimg-bench/copy-mode-$$
RUNTIME=$TAG-runtime:1
WORK=$(mktemp -d)
IDS=$WORK/ids
MEASURED=$WORK/measured
made=()
cleanup() {
  for ((i = ${#made[@]} - 1; i >= 0; i--)); do "$DOCKER" rmi "${made[$i]}" >/dev/null 2>&1 || true; done
  [[ -f $IDS ]] && tac "$IDS" | while read -r id; do "$DOCKER" rmi "$id" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

node dist/cli/main.js runtime build --tag "$RUNTIME" --quiet
made+=("$RUNTIME")
cid=$("$DOCKER" create "$RUNTIME" /x)
mkdir -p "$WORK/a" && "$DOCKER" export "$cid" | tar -C "$WORK/a" -xf - && "$DOCKER" rm "$cid" >/dev/null
cp -a "$WORK/a" "$WORK/b"
find "$WORK/b/opt/deltaimg/dist" -name '*.js' | sort | head -20 | while read -r f; do echo "// changed" >>"$f"; done
rm -rf "$WORK/b/opt/deltaimg/node_modules/commander"
for v in a b; do tar -C "$WORK/$v" -c . | "$DOCKER" import --change 'ENV PATH=/bin' - "$TAG-$v:1" >/dev/null; made+=("$TAG-$v:1"); done
echo "pair: A $(du -sh "$WORK/a" | cut -f1), $(find "$WORK/a" | wc -l) paths"

# build NAME BUILDKIT(0|1) DELTAIMG-ARGS...: times `deltaimg dockerfile ARGS | docker build`, keeps the log.
build() {
  local name=$1 bk=$2
  shift 2
  local start end
  start=$(date +%s.%N)
  node dist/cli/main.js dockerfile "$@" --runtime-image "$RUNTIME" --no-check |
    DOCKER_BUILDKIT=$bk BUILDKIT_PROGRESS=plain "$DOCKER" build --no-cache --network=none -t "$TAG-$name:1" - >"$WORK/$name.log" 2>&1
  end=$(date +%s.%N)
  made+=("$TAG-$name:1")
  # Every image the classic builder made (removed at the end); of those, the COPY and RUN steps'
  # but the last (the tagged result) are what it leaves behind holding data.
  awk '/^Step [0-9]+\/[0-9]+ : /{instr=$4} /^ ---> [0-9a-f]+$/{if (instr !~ /^FROM$/) print $2}' "$WORK/$name.log" >>"$IDS" || true
  awk '/^Step [0-9]+\/[0-9]+ : /{instr=$4} /^ ---> [0-9a-f]+$/{if (instr ~ /^(COPY|RUN)$/) print $2}' "$WORK/$name.log" | sed '$d' >>"$MEASURED" || true
  printf '%s %.1f\n' "$name" "$(echo "$end - $start" | bc)"
}

before=$("$DOCKER" system df --format '{{.Type}} {{.Size}}' | tr '\n' ' ')
build mount-diff 1 diff "$TAG-a:1" "$TAG-b:1"
build mount-apply 1 apply "$TAG-mount-diff:1"
build copy-diff-buildkit 1 diff "$TAG-a:1" "$TAG-b:1" --copy
build copy-apply-buildkit 1 apply "$TAG-copy-diff-buildkit:1" --copy
build copy-diff-classic 0 diff "$TAG-a:1" "$TAG-b:1" --copy
build copy-apply-classic 0 apply "$TAG-copy-diff-classic:1" --copy
sizes=0
while read -r id; do
  s=$("$DOCKER" image inspect --format '{{.Size}}' "$id" 2>/dev/null || echo 0)
  p=$("$DOCKER" image inspect --format '{{.Parent}}' "$id" 2>/dev/null || echo)
  ps=0
  [[ -n $p ]] && ps=$("$DOCKER" image inspect --format '{{.Size}}' "$p" 2>/dev/null || echo 0)
  sizes=$((sizes + s - ps))
done < <(sort -u "$MEASURED")
echo "classic builder intermediate images left by the two --copy builds (each COPY/RUN step's own layer, summed): $((sizes / 1000000)) MB"
echo "docker system df before: $before"
echo "docker system df after:  $("$DOCKER" system df --format '{{.Type}} {{.Size}}' | tr '\n' ' ')"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $("$DOCKER" version --format 'engine {{.Server.Version}}'), $(date -u +%FT%TZ)"
