"""testcontainers-python 4.15.0 against pelagos-dockerd: a busybox container waited for with the
log wait strategy, then exec, get_logs, its published port, stop; non-zero exit on a difference."""

import os
import signal
import sys
import time
import traceback
import urllib.request

# Ryuk (the reaper container) comes from Docker Hub, which the tests cannot reach: the script
# stops its container itself. Set before testcontainers reads its configuration.
os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"

import docker  # noqa: E402
from testcontainers.core.container import DockerContainer  # noqa: E402
from testcontainers.core.wait_strategies import LogMessageWaitStrategy  # noqa: E402
from testcontainers.core.waiting_utils import wait_for_logs  # noqa: E402

IMAGE = os.environ["PELAGOS_TEST_IMAGE"]
# The line comes after a moment, so the wait strategy has to poll the logs for it.
SCRIPT = (
    "mkdir -p /www && echo hello-testcontainers > /www/index.html && sleep 1"
    " && echo 'ready to serve' && exec httpd -f -p 80 -h /www"
)


class Failed(Exception):
    """testcontainers saw something moby would not have answered."""


def check(cond, what, *details):
    if not cond:
        raise Failed(what + "".join(f"\n    {d!r}" for d in details))


def fetch(url):
    """The body at `url`, polled until the port answers (60 s)."""
    end = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.read()
        except OSError as e:
            if time.monotonic() > end:
                raise Failed(f"no answer at {url}: {e}")
            time.sleep(0.05)


def flow():
    container = (
        DockerContainer(IMAGE)
        .with_command(["sh", "-c", SCRIPT])
        .with_exposed_ports(80)
        .with_env("FLAVOUR", "pelagos")
        .waiting_for(LogMessageWaitStrategy("ready to serve"))
    )
    with container:
        stdout, stderr = container.get_logs()
        check(b"ready to serve" in stdout, "the wait strategy returned before the line", stdout)
        check(stderr == b"", "nothing on stderr", stderr)
        # The function form of the same strategy, on a container already ready.
        waited = wait_for_logs(container, LogMessageWaitStrategy("ready to serve"), timeout=60)
        check(waited >= 0, "wait_for_logs", waited)

        result = container.exec(["sh", "-c", "echo $FLAVOUR; cat /www/index.html"])
        check(result.exit_code == 0, "exec exit code", result)
        check(result.output == b"pelagos\nhello-testcontainers\n", "exec output", result.output)
        check(container.status == "running", "status", container.status)

        host = container.get_container_host_ip()
        port = container.get_exposed_port(80)
        check(int(port) > 0, "published port", port)
        body = fetch(f"http://{host}:{port}/index.html")
        check(body == b"hello-testcontainers\n", "the published port serves the file", host, port, body)
        cid = container.get_container_id()
        labels = container.get_wrapped_container().labels
        check(labels.get("org.testcontainers.lang") == "python", "testcontainers' labels", labels)

    client = docker.from_env()
    left = client.containers.list(all=True, filters={"id": cid})
    check(left == [], "stop removed the container", left)


def main():
    def hung(*_):
        print("FAILED testcontainers: still running after 300 s", flush=True)
        traceback.print_stack()
        os._exit(2)

    signal.signal(signal.SIGALRM, hung)
    signal.alarm(300)
    try:
        flow()
    except Exception:
        print("FAILED testcontainers flow:", flush=True)
        traceback.print_exc()
        sys.exit(1)
    print("ok testcontainers", flush=True)


if __name__ == "__main__":
    main()
