"""docker-py 7.1.0 against pelagos-dockerd: the daily flows of one GROUP (argv[1]) with the API
version negotiated ("auto") and pinned (1.41, 1.24); exits non-zero naming what differed."""

import io
import os
import re
import signal
import socket
import sys
import tarfile
import time
import traceback

import docker
from docker.errors import APIError, ContainerError, ImageNotFound, NotFound
from docker.types import Healthcheck, IPAMConfig, IPAMPool
from docker.utils.socket import frames_iter

IMAGE = os.environ["PELAGOS_TEST_IMAGE"]
HOST = os.environ["DOCKER_HOST"]
VERSIONS = os.environ.get("PELAGOS_TEST_API_VERSIONS", "auto 1.41 1.24").split()
# Every wait polls against this deadline; the watchdog ends a hung stream with a clear message.
DEADLINE = 60
WATCHDOG = 600


class Failed(Exception):
    """A flow saw something moby would not have answered."""


def check(cond, what, *details):
    if not cond:
        raise Failed(what + "".join(f"\n    {d!r}" for d in details))


def eq(got, want, what):
    check(got == want, f"{what}: got {got!r}, want {want!r}")


def poll(what, fn, timeout=DEADLINE):
    """fn() until it is truthy (its value), failing after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > end:
            raise Failed(f"timed out waiting for {what}")
        time.sleep(0.05)


def api_error(fn, status, what):
    """fn() must raise docker's APIError with HTTP `status`; the error."""
    try:
        fn()
    except APIError as e:
        eq(e.status_code, status, f"{what}: status ({e.explanation})")
        return e
    raise Failed(f"{what}: no error, want {status}")


class Ctx:
    """One client at one API version; names carry the version so runs do not collide."""

    def __init__(self, version):
        self.client = docker.DockerClient(base_url=HOST, version=version)
        self.api = self.client.api
        self.label = version
        self.tag = version.replace(".", "")
        self.version = tuple(int(x) for x in self.api.api_version.split("."))

    def at_least(self, major, minor):
        return self.version >= (major, minor)

    def name(self, base):
        return f"py-{base}-{self.tag}"

    def run_d(self, cmd, **kw):
        """A detached container of the test image."""
        return self.client.containers.run(IMAGE, cmd, detach=True, **kw)


def tar_of(files):
    """A tar archive (bytes) of {name: bytes}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def untar(chunks):
    """{name: bytes} of the regular files of a tar stream."""
    tar = tarfile.open(fileobj=io.BytesIO(b"".join(chunks)))
    return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


# --- system and images -------------------------------------------------------------------


def system_and_images(x):
    c = x.client
    check(c.ping() is True, "ping")
    v = c.version()
    eq(v["ApiVersion"], "1.41", "version ApiVersion")
    eq(v["MinAPIVersion"], "1.24", "version MinAPIVersion")
    eq(v["Os"], "linux", "version Os")
    info = c.info()
    for key in ("Containers", "Images", "ServerVersion", "OperatingSystem", "NCPU", "MemTotal"):
        check(key in info, f"info has {key}", sorted(info))
    check(info["NCPU"] >= 1 and info["MemTotal"] > 0, "info figures", info["NCPU"], info["MemTotal"])

    # The pull sends X-Registry-Auth (the registry takes anyone).
    image = c.images.pull(IMAGE, auth_config={"username": "py", "password": "secret"})
    check(IMAGE in image.tags, "pulled image tags", image.tags)
    check(image.id.startswith("sha256:"), "image id", image.id)
    eq(image.attrs["Config"]["Cmd"], ["sh"], "image Cmd")
    repo = IMAGE.rsplit(":", 1)[0]
    eq([i.id for i in c.images.list(name=repo)], [image.id], "images.list(name=repo)")
    check(image.id in [i.id for i in c.images.list()], "images.list() has the image")
    eq(c.images.get(IMAGE).id, image.id, "images.get")
    check(any(h.get("CreatedBy") is not None for h in image.history()), "history", image.history())

    tagged = f"pytest/tagged-{x.tag}"
    check(image.tag(tagged, "v1") is True, "image.tag")
    eq(c.images.get(f"{tagged}:v1").id, image.id, "the tag names the image")
    c.images.remove(f"{tagged}:v1")
    try:
        c.images.get(f"{tagged}:v1")
        raise Failed("a removed tag is still there")
    except ImageNotFound:
        pass

    # save and load round-trip the image.
    saved = b"".join(image.save(named=True))
    check(len(saved) > 1024, "image.save gives a tarball", len(saved))
    c.images.remove(IMAGE)
    loaded = c.images.load(saved)
    check(any(IMAGE in i.tags for i in loaded), "images.load", [i.tags for i in loaded])

    if x.at_least(1, 25):
        dropped = f"pytest/dropped-{x.tag}:1"
        image.tag(dropped)
        c.images.remove(dropped)
        pruned = c.images.prune()
        check("SpaceReclaimed" in pruned, "images.prune answer", pruned)
        df = c.df()
        check(any(IMAGE in (i.get("RepoTags") or []) for i in df["Images"]), "df Images", df)


# --- run and logs ------------------------------------------------------------------------


def run_and_logs(x):
    c = x.client
    out = c.containers.run(
        IMAGE,
        ["sh", "-c", 'echo "$GREETING"; pwd; id -u; echo to-stderr >&2'],
        environment={"GREETING": "hello"},
        working_dir="/tmp",
        user="1000",
        name=x.name("fg"),
        remove=True,
    )
    eq(out, b"hello\n/tmp\n1000\n", "run output (stdout only)")
    eq(c.containers.list(all=True, filters={"name": x.name("fg")}), [], "remove=True removed it")
    both = c.containers.run(IMAGE, ["sh", "-c", "echo out; echo err >&2"], stderr=True, remove=True)
    eq(sorted(both.splitlines()), [b"err", b"out"], "run output with stderr")

    if x.at_least(1, 25):
        # detach with remove is HostConfig.AutoRemove: the container goes at its exit.
        gone = x.run_d(["true"], remove=True)
        # The low-level list: containers.list() inspects each, racing the removal.
        poll("the auto-removed container gone", lambda: not x.api.containers(all=True, filters={"id": gone.id}))

    try:
        c.containers.run(IMAGE, ["sh", "-c", "echo failing >&2; exit 3"], remove=True)
        raise Failed("run of a failing command did not raise")
    except ContainerError as e:
        eq(e.exit_status, 3, "ContainerError exit status")
        check(b"failing" in e.stderr, "ContainerError stderr", e.stderr)

    script = "for i in 1 2 3; do echo line$i; done; echo warn >&2; sleep 1; echo done"
    ctr = x.run_d(["sh", "-c", script], labels={"flow": "logs"}, name=x.name("logs"))
    eq(ctr.labels, {"flow": "logs"}, "labels")
    eq(ctr.attrs["Config"]["Image"], IMAGE, "Config.Image")
    followed = b"".join(ctr.logs(stream=True, follow=True))
    eq(sorted(followed.splitlines()), sorted(b"line1 line2 line3 warn done".split()), "logs follow")
    status = ctr.wait()
    eq(status["StatusCode"], 0, "wait StatusCode")
    eq(ctr.logs(stderr=False), b"line1\nline2\nline3\ndone\n", "stdout logs")
    eq(ctr.logs(stdout=False), b"warn\n", "stderr logs")
    eq(ctr.logs(stderr=False, tail=2), b"line3\ndone\n", "logs tail=2")
    stamped = ctr.logs(stderr=False, timestamps=True).decode().splitlines()
    eq(len(stamped), 4, "timestamped lines")
    for line in stamped:
        check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (line\d|done)$", line), "timestamp", line)
    eq(ctr.logs(since=int(time.time()) + 3600), b"", "logs since the future")
    eq(ctr.logs(stderr=False, since=1), b"line1\nline2\nline3\ndone\n", "logs since 1970")
    if x.at_least(1, 35):
        eq(ctr.logs(until=946684800), b"", "logs until 2000")
    ctr.reload()
    eq(ctr.status, "exited", "status after wait")
    eq(ctr.attrs["State"]["ExitCode"], 0, "State.ExitCode")
    if x.at_least(1, 30):
        eq(ctr.wait(condition="not-running")["StatusCode"], 0, "wait condition=not-running")
    ctr.remove()


# --- exec and attach ---------------------------------------------------------------------


def exec_and_attach(x):
    c = x.client
    ctr = x.run_d(["sleep", "300"], name=x.name("exec"))
    r = ctr.exec_run(["sh", "-c", "echo out; echo err >&2; exit 4"])
    eq(r.exit_code, 4, "exec_run exit_code")
    eq(sorted(r.output.splitlines()), [b"err", b"out"], "exec_run output")
    r = ctr.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
    eq(r.output, (b"out\n", b"err\n"), "exec_run demux")
    eq(r.exit_code, 0, "exec_run demux exit_code")
    r = ctr.exec_run(["sh", "-c", "echo a; echo b"], stream=True)
    eq(r.exit_code, None, "streamed exec has no exit code yet")
    eq(b"".join(r.output), b"a\nb\n", "exec_run stream")
    eq(ctr.exec_run(["id", "-u"], user="1000").output, b"1000\n", "exec_run user")
    eq(ctr.exec_run(["echo", "x"], tty=True).output, b"x\r\n", "exec_run tty")
    if x.at_least(1, 25):
        r = ctr.exec_run(["sh", "-c", "echo $FOO"], environment={"FOO": "bar"})
        eq(r.output, b"bar\n", "exec_run environment")
    if x.at_least(1, 35):
        eq(ctr.exec_run(["pwd"], workdir="/tmp").output, b"/tmp\n", "exec_run workdir")
    r = ctr.exec_run(["nosuchprogram"])
    check(r.exit_code in (126, 127), "exec of a missing program", r)
    # exec_create + exec_start detached, then exec_inspect.
    eid = x.api.exec_create(ctr.id, ["sh", "-c", "exit 5"])["Id"]
    x.api.exec_start(eid, detach=True)
    done = poll("detached exec ends", lambda: (lambda i: i if not i["Running"] and i["ExitCode"] is not None else None)(x.api.exec_inspect(eid)))
    eq(done["ExitCode"], 5, "exec_inspect ExitCode")
    eq(done["ContainerID"], ctr.id, "exec_inspect ContainerID")
    ctr.remove(force=True)

    # resize of a container's tty and of an exec's: the sizes the processes' terminals see.
    term = x.run_d(["sleep", "300"], tty=True, name=x.name("tty"))
    term.resize(height=30, width=100)
    eq(term.exec_run(["sh", "-c", "stty size < /proc/1/fd/0"]).output, b"30 100\n", "container resize")
    eid = x.api.exec_create(term.id, ["sleep", "301"], tty=True)["Id"]
    x.api.exec_start(eid, detach=True, tty=True)
    poll("the tty exec runs", lambda: x.api.exec_inspect(eid)["Running"])
    x.api.exec_resize(eid, height=20, width=70)
    find = "for p in /proc/[0-9]*; do grep -q 301 $p/cmdline 2>/dev/null && stty size < $p/fd/0 && break; done"
    eq(term.exec_run(["sh", "-c", find]).output, b"20 70\n", "exec resize")
    term.remove(force=True)

    # attach(stream=True) before the start: nothing of the output is missed.
    ticker = c.containers.create(IMAGE, ["sh", "-c", "for i in 1 2 3; do echo tick$i; done; echo tock >&2"], name=x.name("attach"))
    stream = ticker.attach(stream=True, stdout=True, stderr=True)
    ticker.start()
    eq(sorted(b"".join(stream).splitlines()), [b"tick1", b"tick2", b"tick3", b"tock"], "attach stream")
    eq(ticker.wait()["StatusCode"], 0, "attached container's exit")
    # An attach with stream=0 answers the log so far (logs=1) and ends: upgraded, as
    # docker-py's attach() asks (the daemon sends nothing before the client read the 101:
    # what came with it would be lost in docker-py's buffered read of the answer)...
    eq(ticker.attach(logs=True, stdout=True, stderr=False), b"tick1\ntick2\ntick3\n", "attach logs=1 stream=0")
    eq(ticker.attach(logs=True, stdout=False, stderr=True, demux=True), (None, b"tock\n"), "attach logs, stderr, demux")
    eq(ticker.attach(logs=False), b"", "attach stream=0 logs=0")

    # ... and without the upgrade: the answer's body.
    def attach_logs(**params):
        url = x.api._url("/containers/{0}/attach", ticker.id)
        answer = x.api._post(url, params={"stream": 0, **params})
        return x.api._get_result_tty(False, answer, False)
    eq(attach_logs(logs=1, stdout=1), b"tick1\ntick2\ntick3\n", "attach logs=1 stream=0 stdout")
    eq(attach_logs(logs=1, stderr=1), b"tock\n", "attach logs=1 stream=0 stderr")
    eq(attach_logs(logs=0, stdout=1), b"", "attach logs=0 stream=0")
    ticker.remove()

    # attach_socket with stdin: what goes in comes back through cat; half-close ends it.
    cat = c.containers.create(IMAGE, ["cat"], stdin_open=True, name=x.name("cat"))
    cat.start()
    sock = cat.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    raw = sock._sock if hasattr(sock, "_sock") else sock
    raw.sendall(b"ping-through-attach\n")
    raw.shutdown(socket.SHUT_WR)
    echoed = b"".join(data for _, data in frames_iter(sock, tty=False))
    eq(echoed, b"ping-through-attach\n", "attach_socket echo")
    sock.close()
    eq(cat.wait()["StatusCode"], 0, "cat's exit after stdin closed")
    cat.remove()


# --- lifecycle, stats, top, archive, list filters -----------------------------------------


def state_of(ctr):
    ctr.reload()
    return ctr.attrs["State"]


def cgroup2_controllers():
    """The controllers of the cgroup v2 tree the daemon's containers live in."""
    for path in ("/sys/fs/cgroup/cgroup.controllers", "/sys/fs/cgroup/unified/cgroup.controllers"):
        try:
            with open(path) as f:
                return f.read().split()
        except OSError:
            continue
    return []


def lifecycle(x):
    c = x.client
    ctr = x.run_d(["sleep", "300"], name=x.name("life"), labels={"flow": f"life-{x.tag}"})
    eq(state_of(ctr)["Status"], "running", "after run")
    started = ctr.attrs["State"]["StartedAt"]
    ctr.stop(timeout=1)
    eq(state_of(ctr)["Status"], "exited", "after stop")
    eq(ctr.attrs["State"]["ExitCode"], 137, "sleep as pid 1 is killed at the stop timeout")
    ctr.start()
    eq(state_of(ctr)["Status"], "running", "after start")
    ctr.restart(timeout=1)
    state = state_of(ctr)
    eq(state["Status"], "running", "after restart")
    check(state["StartedAt"] != started, "restart starts it anew", started, state["StartedAt"])
    ctr.pause()
    eq(state_of(ctr)["Status"], "paused", "after pause")
    check(ctr.attrs["State"]["Paused"] is True, "State.Paused")
    api_error(lambda: ctr.exec_run(["true"]), 409, "exec in a paused container")
    ctr.unpause()
    eq(state_of(ctr)["Status"], "running", "after unpause")

    stats = ctr.stats(stream=False)
    for key in ("read", "cpu_stats", "precpu_stats", "memory_stats", "pids_stats", "name", "id"):
        check(key in stats, f"stats has {key}", sorted(stats))
    eq(stats["id"], ctr.id, "stats id")
    eq(stats["name"], "/" + x.name("life"), "stats name")
    # A hybrid host's v2 tree has no memory or pids controller: those figures are empty.
    controllers = cgroup2_controllers()
    if "memory" in controllers:
        check(stats["memory_stats"].get("usage", 0) > 0, "stats memory usage", stats["memory_stats"])
    else:
        eq(stats["memory_stats"], {}, "memory stats without the controller")
    if "pids" in controllers:
        check(stats["pids_stats"].get("current", 0) >= 1, "stats pids", stats["pids_stats"])
    check(stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0, "stats cpu", stats["cpu_stats"])
    streamed = ctr.stats(stream=True, decode=True)
    first = next(streamed)
    streamed.close()
    eq(first["id"], ctr.id, "streamed stats id")

    top = ctr.top()
    check("PID" in top["Titles"] and "CMD" in top["Titles"], "top titles", top["Titles"])
    cmd = top["Titles"].index("CMD")
    check(any("sleep 300" in p[cmd] for p in top["Processes"]), "top processes", top["Processes"])
    aux = ctr.top(ps_args="aux")
    check("USER" in aux["Titles"], "top ps_args=aux", aux["Titles"])

    # put_archive (bytes, then a chunked generator) and get_archive round-trip.
    check(ctr.put_archive("/tmp", tar_of({"hello.txt": b"hello archive\n"})) is True, "put_archive")
    chunked = tar_of({"sub/chunked.txt": b"sent in chunks\n"})
    check(ctr.put_archive("/tmp", (chunked[i : i + 512] for i in range(0, len(chunked), 512))), "chunked put_archive")
    eq(ctr.exec_run(["cat", "/tmp/hello.txt", "/tmp/sub/chunked.txt"]).output, b"hello archive\nsent in chunks\n", "archive content in the container")
    chunks, stat = ctr.get_archive("/tmp/hello.txt")
    eq(stat["name"], "hello.txt", "get_archive stat name")
    eq(stat["size"], 14, "get_archive stat size")
    eq(untar(chunks), {"hello.txt": b"hello archive\n"}, "get_archive content")
    chunks, _ = ctr.get_archive("/tmp/sub")
    eq(untar(chunks), {"sub/chunked.txt": b"sent in chunks\n"}, "get_archive of a directory")
    api_error(lambda: ctr.get_archive("/no/such/path"), 404, "get_archive of a missing path")
    changes = {d["Path"]: d["Kind"] for d in ctr.diff()}
    eq(changes.get("/tmp/hello.txt"), 1, "diff shows the added file")

    # containers.list filters: label, status, name.
    other = x.run_d(["true"], name=x.name("other"), labels={"flow": f"life-{x.tag}"})
    eq(other.wait()["StatusCode"], 0, "other's exit")
    label = {"label": f"flow=life-{x.tag}"}
    eq([k.id for k in c.containers.list(filters=label)], [ctr.id], "list running by label")
    eq(sorted(k.id for k in c.containers.list(all=True, filters=label)), sorted([ctr.id, other.id]), "list all by label")
    eq([k.id for k in c.containers.list(all=True, filters={**label, "status": "exited"})], [other.id], "list by status")
    eq([k.id for k in c.containers.list(all=True, filters={"name": x.name("other")})], [other.id], "list by name")
    eq(c.containers.get(x.name("life")).id, ctr.id, "get by name")
    eq(c.containers.get(ctr.id[:12]).id, ctr.id, "get by short id")
    other.rename(x.name("renamed"))
    eq(c.containers.get(x.name("renamed")).id, other.id, "rename")
    other.remove()

    ctr.kill(signal="SIGKILL")
    eq(ctr.wait()["StatusCode"], 137, "wait after SIGKILL")
    api_error(lambda: ctr.kill(), 409, "kill of a stopped container")
    ctr.remove()


# --- restart policy and healthcheck -------------------------------------------------------


def health_and_restart(x):
    c = x.client
    failing = x.run_d(["sh", "-c", "echo attempt; exit 2"], name=x.name("retry"), restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    policy = failing.attrs["HostConfig"]["RestartPolicy"]
    eq((policy["Name"], policy["MaximumRetryCount"]), ("on-failure", 2), "RestartPolicy")

    def retried():
        failing.reload()
        s = failing.attrs["State"]
        return s["Status"] == "exited" and failing.attrs["RestartCount"] == 2
    poll("on-failure retries twice, then stays exited", retried)
    eq(failing.attrs["State"]["ExitCode"], 2, "exit code after the retries")
    eq(failing.logs(), b"attempt\n" * 3, "three attempts logged")
    failing.remove()

    check_ = {"Test": ["CMD-SHELL", "test -e /tmp/ready"], "Interval": 200_000_000, "Timeout": 2_000_000_000, "Retries": 100}
    # docker-py refuses a StartPeriod key below 1.29; its Healthcheck sends it as null.
    health = Healthcheck(**check_) if x.at_least(1, 29) else check_
    ctr = x.run_d(["sleep", "300"], name=x.name("health"), healthcheck=health)
    eq(state_of(ctr)["Health"]["Status"], "starting", "health before the first success")
    ctr.exec_run(["touch", "/tmp/ready"])
    poll("healthy", lambda: state_of(ctr)["Health"]["Status"] == "healthy")
    log = ctr.attrs["State"]["Health"]["Log"]
    check(log and log[-1]["ExitCode"] == 0, "health log", log)
    eq([k.id for k in c.containers.list(filters={"health": "healthy", "name": x.name("health")})], [ctr.id], "list health=healthy")
    ctr.remove(force=True)


# --- volumes ------------------------------------------------------------------------------


def volumes(x):
    c = x.client
    name = x.name("vol")
    vol = c.volumes.create(name, driver="local", labels={"team": x.tag})
    eq(vol.name, name, "volume name")
    check(vol.attrs["Mountpoint"], "volume Mountpoint", vol.attrs)
    eq(c.volumes.get(name).attrs["Labels"], {"team": x.tag}, "volume labels")
    eq([v.name for v in c.volumes.list(filters={"label": f"team={x.tag}"})], [name], "volumes.list by label")
    check(name in [v.name for v in c.volumes.list()], "volumes.list")
    mount = {name: {"bind": "/data", "mode": "rw"}}
    c.containers.run(IMAGE, ["sh", "-c", "echo kept > /data/f"], volumes=mount, remove=True)
    eq(c.containers.run(IMAGE, ["cat", "/data/f"], volumes=mount, remove=True), b"kept\n", "volume content")

    holder = x.run_d(["sleep", "300"], volumes=mount)
    api_error(lambda: c.volumes.get(name).remove(), 409, "remove of a volume in use")
    holder.remove(force=True)
    c.volumes.get(name).remove()
    try:
        c.volumes.get(name)
        raise Failed("a removed volume is still there")
    except NotFound:
        pass
    if x.at_least(1, 25):
        spare = c.volumes.create(x.name("spare"))
        pruned = c.volumes.prune()
        check(spare.name in (pruned["VolumesDeleted"] or []), "volumes.prune", pruned)
        check("SpaceReclaimed" in pruned, "volumes.prune SpaceReclaimed", pruned)


# --- networks (the daemon runs in a network namespace of the test's own) ------------------


def networks(x):
    c = x.client
    n = VERSIONS.index(x.label) + 1
    name = x.name("net")
    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=f"10.97.{n}.0/24", gateway=f"10.97.{n}.1")])
    net = c.networks.create(name, driver="bridge", ipam=ipam, labels={"team": x.tag})
    eq(net.attrs["Driver"], "bridge", "network driver")
    eq(c.networks.get(name).id, net.id, "networks.get by name")
    eq([k.id for k in c.networks.list(names=[name])], [net.id], "networks.list(names)")
    eq([k.id for k in c.networks.list(filters={"label": f"team={x.tag}"})], [net.id], "networks.list by label")
    config = net.attrs["IPAM"]["Config"][0]
    eq((config["Subnet"], config["Gateway"]), (f"10.97.{n}.0/24", f"10.97.{n}.1"), "IPAM")

    ctr = x.run_d(["sleep", "300"], network=name, name=x.name("member"))
    ctr.reload()  # run() answers the inspect made before the start
    address = ctr.attrs["NetworkSettings"]["Networks"][name]["IPAddress"]
    check(address.startswith(f"10.97.{n}."), "container address", address)
    net.reload()
    check(ctr.id in net.attrs["Containers"], "network Containers", net.attrs["Containers"])
    peer = c.containers.run(IMAGE, ["ping", "-c1", x.name("member")], network=name, remove=True)
    check(b"1 packets received" in peer, "a peer resolves and reaches it by name", peer)

    other = c.networks.create(x.name("other"), ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=f"10.98.{n}.0/24")]))
    other.connect(ctr)
    other.reload()
    check(ctr.id in other.attrs["Containers"], "connect", other.attrs)
    other.disconnect(ctr)
    other.reload()
    eq(other.attrs["Containers"], {}, "disconnect")
    api_error(net.remove, 403, "remove of a network in use")
    ctr.remove(force=True)
    net.remove()
    try:
        c.networks.get(name)
        raise Failed("a removed network is still there")
    except NotFound:
        pass
    if x.at_least(1, 25):
        pruned = c.networks.prune()
        check(other.name in (pruned["NetworksDeleted"] or []), "networks.prune", pruned)
    else:
        other.remove()


# --- events and prune ---------------------------------------------------------------------


def events_and_prune(x):
    c = x.client
    label = f"flow=ev-{x.tag}"
    since = int(time.time()) - 1
    live = c.events(decode=True, filters={"label": label, "type": "container"})
    ctr = x.run_d(["true"], labels={"flow": f"ev-{x.tag}"}, name=x.name("ev"))
    ctr.wait()
    ctr.remove()
    seen = []
    for event in live:
        seen.append(event["Action"])
        if event["Action"] == "destroy":
            break
    live.close()
    until = int(time.time()) + 2
    past = list(c.events(since=since, until=until, decode=True, filters={"label": label}))
    actions = [e["Action"] for e in past]
    for wanted in ("create", "start", "die", "destroy"):
        check(wanted in seen, f"live events have {wanted}", seen)
        check(wanted in actions, f"past events have {wanted}", actions)
    check(actions.index("create") < actions.index("start") < actions.index("die") < actions.index("destroy"), "event order", actions)
    die = next(e for e in past if e["Action"] == "die")
    eq(die["Type"], "container", "event Type")
    eq(die["Actor"]["ID"], ctr.id, "event Actor.ID")
    eq(die["Actor"]["Attributes"]["name"], x.name("ev"), "event name attribute")
    eq(die["Actor"]["Attributes"]["exitCode"], "0", "die exitCode")
    only_die = list(c.events(since=since, until=until, decode=True, filters={"label": label, "event": "die"}))
    eq([e["Action"] for e in only_die], ["die"], "events filtered by event")

    if not x.at_least(1, 25):
        return
    prune_label = {"flow": f"prune-{x.tag}"}
    stopped = x.run_d(["true"], labels=prune_label)
    stopped.wait()
    running = x.run_d(["sleep", "300"], labels=prune_label)
    pruned = c.containers.prune(filters={"label": f"flow=prune-{x.tag}"})
    eq(pruned["ContainersDeleted"], [stopped.id], "containers.prune deletes the stopped one only")
    check(isinstance(pruned["SpaceReclaimed"], int), "containers.prune SpaceReclaimed", pruned)
    running.remove(force=True)
    c.images.get(IMAGE).tag(f"pytest/unused-{x.tag}", "1")
    pruned = c.images.prune(filters={"dangling": False})
    untagged = [d.get("Untagged") for d in pruned["ImagesDeleted"] or []]
    check(f"pytest/unused-{x.tag}:1" in untagged, "images.prune dangling=false", pruned)
    eq(c.images.list(), [], "no image left after the prune")
    c.images.pull(IMAGE)


# --- errors -------------------------------------------------------------------------------


def errors(x):
    c = x.client
    try:
        c.containers.get("nosuchcontainer")
        raise Failed("get of an unknown container")
    except NotFound as e:
        eq(e.status_code, 404, "unknown container status")
        check("No such container: nosuchcontainer" in e.explanation, "unknown container message", e.explanation)
    try:
        c.images.get("nosuchimage:1")
        raise Failed("get of an unknown image")
    except ImageNotFound as e:
        eq(e.status_code, 404, "unknown image status")
    try:
        c.containers.create("nosuchimage:1", ["true"])
        raise Failed("create from an unknown image")
    except ImageNotFound:
        pass
    for get in (c.volumes.get, c.networks.get):
        try:
            get("nosuchthing")
            raise Failed(f"{get} of an unknown name")
        except NotFound:
            pass

    ctr = x.run_d(["sleep", "300"], name=x.name("busy"))
    e = api_error(ctr.remove, 409, "remove of a running container without force")
    check("force" in e.explanation, "the message says how", e.explanation)
    api_error(lambda: x.run_d(["true"], name=x.name("busy")), 409, "a name in use")
    ctr.start()  # already running: 304, no error
    ctr.remove(force=True)
    gone = x.run_d(["true"])
    gone.wait()
    api_error(lambda: gone.exec_run(["true"]), 409, "exec in a stopped container")
    gone.remove()


GROUPS = {
    "system_and_images": system_and_images,
    "run_and_logs": run_and_logs,
    "exec_and_attach": exec_and_attach,
    "lifecycle": lifecycle,
    "health_and_restart": health_and_restart,
    "volumes": volumes,
    "networks": networks,
    "events_and_prune": events_and_prune,
    "errors": errors,
}


def main():
    group = sys.argv[1]
    flow = GROUPS[group]

    def hung(*_):
        print(f"FAILED {group}: still running after {WATCHDOG} s (a stream that never ended?)", flush=True)
        traceback.print_stack()
        os._exit(2)

    signal.signal(signal.SIGALRM, hung)
    signal.alarm(WATCHDOG)
    for version in VERSIONS:
        print(f"--- {group} with API version {version}", flush=True)
        try:
            flow(Ctx(version))
        except Exception:
            print(f"FAILED {group} with API version {version}:", flush=True)
            traceback.print_exc()
            sys.exit(1)
    print(f"ok {group}", flush=True)


if __name__ == "__main__":
    main()
