"""docker-py's `images.get_registry_data` against pelagos-dockerd: the SDK reads
`GET /distribution/{name}/json` (the descriptor's digest, the platforms).

Usage: registry_data.py SOCKET IMAGE DIGEST PLATFORM; exits 1 naming what differed.
"""

import sys

import docker


def main() -> int:
    socket, image, digest, platform = sys.argv[1:5]
    client = docker.DockerClient(base_url=f"unix://{socket}", version="1.41")
    data = client.images.get_registry_data(image)
    failures = []
    if data.id != digest:
        failures.append(f"id: {data.id!r}, expected {digest!r}")
    if not data.has_platform(platform):
        failures.append(f"platform {platform} missing from {data.attrs.get('Platforms')!r}")
    if "manifest" not in data.attrs["Descriptor"].get("mediaType", ""):
        failures.append(f"mediaType: {data.attrs['Descriptor']!r}")
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
