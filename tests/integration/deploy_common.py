"""What the deployment-file checks share (deploy_manifests_test.py and
deploy_tenants_check.py): where the sources and the build are, the list of
problems found, and small helpers."""

import os
import re
import subprocess

import yaml

SOURCE_DIR = os.path.abspath(os.environ.get(
    "TP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")))
BINARY_DIR = os.environ.get("TP_BINARY_DIR", os.path.join(SOURCE_DIR, "build"))
problems = []

# Example tenants files shipped as files (the k8s Secret holds one more).
TENANTS_EXAMPLES = ["deploy/systemd/tenants.yaml", "docker/tenants/tenants.yaml"]
TENANTS_FILE = "/etc/tensorpager/tenants.yaml"
TOKEN_HASH = re.compile(r"sha256:[0-9a-f]{64}")


def tenants_example_paths():
    return [os.path.join(SOURCE_DIR, f) for f in TENANTS_EXAMPLES]


def problem(message):
    problems.append(message)
    print("FAIL: " + message)


def path(relative):
    return os.path.join(SOURCE_DIR, relative)


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def load_yaml_docs(relative):
    with open(path(relative)) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def tensorpagerd():
    binary = os.path.join(BINARY_DIR, "server", "tensorpagerd")
    if not os.access(binary, os.X_OK):
        raise SystemExit("FAIL: %s is not built" % binary)
    return binary


def container(spec, name):
    for c in spec.get("containers", []):
        if c["name"] == name:
            return c
    return None


def dockerfile_instructions():
    lines, current = [], ""
    with open(path("docker/Dockerfile")) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not current and (not line.strip() or
                                line.lstrip().startswith("#")):
                continue
            current += line.rstrip("\\").strip() + " "
            if not line.endswith("\\"):
                lines.append(current.strip())
                current = ""
    return lines
