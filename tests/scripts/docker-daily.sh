#!/usr/bin/env bash
# A script written for docker, as people write them: run, ps --filter/--format, logs, exec,
# cp, inspect --format, events --since, stop, rm, prune. tests/docker_script.rs runs it
# unchanged with `alias docker=pelagos`. Argument: the image.
set -euo pipefail
shopt -s expand_aliases
alias docker="${DOCKER_ALIAS:-docker}"
image=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

docker run -d --name web --label tier=front "$image" sh -c 'echo serving; while :; do sleep 1; done'
docker run --name job --label tier=batch "$image" sh -c 'echo done > /result; exit 3' || code=$?
[ "${code:-0}" = 3 ] || { echo "job exit code ${code:-0}, want 3"; exit 1; }

# ps with filters and formats
[ "$(docker ps --filter label=tier=front --format '{{.Names}}')" = web ]
[ "$(docker ps -a --filter status=exited --filter name=job --format '{{.Names}} {{.Status}}' | cut -d' ' -f1-3)" = "job Exited (3)" ]
docker ps -a --format 'table {{.Names}}\t{{.Status}}' | head -1 | grep -q '^NAMES'
[ "$(docker ps -q | wc -l)" = 1 ]

# logs, exec, inspect
until docker logs web | grep -q serving; do sleep 0.1; done
[ "$(docker exec web sh -c 'echo $((6*7))')" = 42 ]
[ "$(docker inspect --format '{{.State.Running}} {{.Config.Labels.tier}}' web)" = "true front" ]
[ "$(docker inspect -f '{{.State.ExitCode}}' job)" = 3 ]
docker inspect web | grep -q '"Running": true'

# cp both ways, on a running and a stopped container
docker cp job:/result "$work/result"
[ "$(cat "$work/result")" = done ]
echo hello > "$work/in.txt"
docker cp "$work/in.txt" web:/tmp/in.txt
[ "$(docker exec web cat /tmp/in.txt)" = hello ]

# events since the script began
docker events --since "$started" --until "$(($(date +%s) + 1))" --filter container=job --format '{{.Action}}' > "$work/events"
grep -qx die "$work/events"
grep -qx start "$work/events"

# stop, rm, prune
docker stop -t 1 web > /dev/null
[ "$(docker inspect -f '{{.State.Status}}' web)" = exited ]
docker rm web > /dev/null
docker container prune -f > /dev/null
[ -z "$(docker ps -aq)" ]
echo "the docker script ran"
