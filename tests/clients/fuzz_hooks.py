"""schemathesis hooks for tests/dockerd_fuzz.rs: a check that every error is Docker's JSON,
the one endless stream (GET /events) bounded, what successful creates made recorded for the
test to remove, and the server errors that are answers by design (as moby's) let through."""

import json
import os
import re
import time

import schemathesis

# Where the successes of creating operations are written, one JSON object a line.
CREATED_LOG = os.environ.get("PELAGOS_FUZZ_CREATED", "")
# Where the server errors let through are written (the test prints them), one a line.
ACCEPTED_LOG = os.environ.get("PELAGOS_FUZZ_ACCEPTED", "")

# The operations whose success leaves an object behind (the test removes each).
CREATING = {
    "POST /containers/create",
    "POST /volumes/create",
    "POST /networks/create",
    "POST /images/create",
    "POST /images/load",
    "POST /images/{name}/tag",
    "POST /commit",
    "POST /containers/{id}/exec",
}

# Operations that must reach a registry: the daemon runs in a network namespace with no
# route out, so a well-formed request fails there as moby's does offline (500, the
# transport's error). Anything else they answer with a 5xx still fails the run.
REGISTRY_BOUND = {
    "POST /images/create",
    "GET /images/search",
    "POST /auth",
    "POST /images/{name}/push",
    "GET /distribution/{name}/json",
}
UNREACHABLE = re.compile(
    r"unreachable|connection refused|dns error|failed to lookup|resolve|error sending request"
    r"|tcp connect error|connect\(|timed out",
    re.IGNORECASE,
)


@schemathesis.check
def errors_are_docker_json(ctx, response, case):
    """moby answers every error with a JSON object whose `message` the clients print."""
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(
            f"error {response.status_code} is not JSON: {response.content[:300]!r}"
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        raise AssertionError(f"error {response.status_code} has no message: {body!r}")
    return None


def _bound_events(case):
    """GET /events streams until `until`: when it is absent or a future unix time, `until`
    is set in the past, so the stored events come and the stream ends (a malformed value
    stays: it must be a 400)."""
    query = dict(case.query or {})
    until = query.get("until")
    text = until if isinstance(until, str) else ""
    try:
        future = float(text) > time.time()
    except ValueError:
        future = False
    if not text.strip() or future:
        query["until"] = "1"
    case.query = query


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.label == "GET /events":
        _bound_events(case)


@schemathesis.hook
def after_call(context, case, response):
    label = case.operation.label
    if CREATED_LOG and label in CREATING and 200 <= response.status_code < 300:
        entry = {
            "operation": label,
            "status": response.status_code,
            "path": case.formatted_path,
            "query": case.query or {},
            "response": response.content.decode("utf-8", "replace"),
        }
        with open(CREATED_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")


def _message(response):
    try:
        body = json.loads(response.content)
    except ValueError:
        return ""
    return body.get("message", "") if isinstance(body, dict) else ""


def by_design(case, response):
    """Why a server error is the answer the API gives here, or None (a bug)."""
    status, message = response.status_code, _message(response)
    if status == 501 and message.startswith("pelagos-dockerd does not"):
        return "a refusal listed in docs/api.md (builds, plugins, URL imports, all-tags pulls)"
    if status == 500 and case.operation.label in REGISTRY_BOUND and UNREACHABLE.search(message):
        return "the registry cannot be reached from the test's network namespace"
    return None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Drops the server errors that are answers by design; keeps every other failure."""
    if getattr(failure, "status_code", None) is None or response is None:
        return True
    reason = by_design(case, response)
    if reason is not None and ACCEPTED_LOG:
        with open(ACCEPTED_LOG, "a", encoding="utf-8") as log:
            line = f"{case.operation.label} {response.status_code} {_message(response)[:120]!r}"
            log.write(f"{line}: {reason}\n")
    return reason is None


# The spec's tarball bodies (`docker load`, plugin creation) are sent as the raw bytes
# schemathesis generates, as it sends application/octet-stream.
schemathesis.serializer.alias("application/x-tar", "application/octet-stream")
