"""The deployment files' tenants files: the systemd and Docker examples and
the Kubernetes Secret parse as tenants files and tensorpagerd accepts
them, and every shipped configuration names one (see
deploy_manifests_test.py, which runs check_tenants)."""

import base64
import glob
import os
import re
import signal
import subprocess
import tempfile
import time

import yaml

from deploy_common import (SOURCE_DIR, TENANTS_EXAMPLES, TENANTS_FILE,
                           TOKEN_HASH, container, dockerfile_instructions,
                           load_yaml_docs, path, problem, tensorpagerd)


def tenants_problems(doc, where):
    """What is wrong with a parsed tenants file (an empty list: nothing)."""
    out = []
    if not isinstance(doc, dict) or not isinstance(doc.get("tenants"), list) \
            or not doc["tenants"]:
        return ["%s: no 'tenants:' list" % where]
    for t in doc["tenants"]:
        if not isinstance(t, dict) or not t.get("name"):
            out.append("%s: a tenant without a name" % where)
            continue
        who = "%s: tenant %s" % (where, t["name"])
        extra = set(t) - {"name", "role", "namespaces", "tokens", "uids",
                          "tls_sans"}
        if extra:
            out.append("%s: unknown keys %s" % (who, sorted(extra)))
        if t.get("role", "client") not in ("client", "admin"):
            out.append("%s: role %r" % (who, t.get("role")))
        if not t.get("namespaces"):
            out.append("%s: no namespaces" % who)
        if not (t.get("tokens") or t.get("uids") or t.get("tls_sans")):
            out.append("%s: no credential" % who)
        for token in t.get("tokens") or []:
            if not isinstance(token, str) or not TOKEN_HASH.fullmatch(token):
                out.append("%s: token %r is not sha256: and 64 lowercase hex "
                           "digits" % (who, str(token)[:16]))
    return out


def tenants_file_accepted(tenants_path, where):
    """tensorpagerd itself starts with the file (loopback, then SIGTERM)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TENSORPAGER_")}
    with tempfile.TemporaryDirectory() as d:
        ready = os.path.join(d, "ready")
        proc = subprocess.Popen(
            [tensorpagerd(), "--data_dir=" + os.path.join(d, "data"),
             "--grpc_address=127.0.0.1:0", "--metrics_address=127.0.0.1:0",
             "--ready_file=" + ready, "--ram_budget=32MiB",
             "--tenants_file=" + tenants_path],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
            text=True, start_new_session=True)
        deadline = time.monotonic() + 30
        while proc.poll() is None and not os.path.exists(ready) and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        err = proc.stderr.read()
        proc.stderr.close()
        if not os.path.exists(ready):
            problem("tensorpagerd does not start with %s:\n%s" %
                    (where, "\n".join(err.splitlines()[-3:])))


def check_tenants():
    """Secure by default: every deployment names a tenants file, the examples
    are tenants files tensorpagerd accepts, with token hashes only."""
    for f in TENANTS_EXAMPLES:
        if not os.path.exists(path(f)):
            problem("%s is missing" % f)
            continue
        docs = load_yaml_docs(f)
        for p in tenants_problems(docs[0] if docs else None, f):
            problem(p)
        tenants_file_accepted(path(f), f)

    # Dockerfile: the runtime stage's ENV names the tenants file.
    inst = dockerfile_instructions()
    stages = [i for i in inst if i.upper().startswith("FROM ")]
    runtime = "\n".join(inst[inst.index(stages[-1]):]) if stages else ""
    m = re.search(r"^ENV .*\bTENSORPAGER_TENANTS_FILE=(\S+)", runtime, re.M)
    if not m:
        problem("docker/Dockerfile runtime stage sets no "
                "TENSORPAGER_TENANTS_FILE (0.0.0.0 must not start open)")
    image_tenants = m.group(1) if m else TENANTS_FILE
    # compose.yaml mounts a directory holding it there.
    compose = load_yaml_docs("docker/compose.yaml")[0]
    svc = compose.get("services", {}).get("tensorpagerd", {})
    env = svc.get("environment", {}) or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env if "=" in e)
    target = env.get("TENSORPAGER_TENANTS_FILE", image_tenants)
    mounted = False
    for vol in svc.get("volumes", []):
        if not isinstance(vol, str):
            continue
        parts = vol.split(":")
        if len(parts) >= 2 and parts[1] == os.path.dirname(target):
            mounted = True
            source = os.path.join(path("docker"), parts[0])
            if not os.path.exists(os.path.join(
                    source, os.path.basename(target))):
                problem("docker/compose.yaml mounts %s at %s without %s" %
                        (parts[0], parts[1], os.path.basename(target)))
    if not mounted:
        problem("docker/compose.yaml mounts no directory at %s (%s)" %
                (os.path.dirname(target), target))

    # Kubernetes: a Secret in the kustomization, mounted (the directory,
    # without subPath, so updates reach the pod) where
    # TENSORPAGER_TENANTS_FILE points.
    kinds = {}
    for f in sorted(glob.glob(path("deploy/k8s/*.yaml"))):
        rel = os.path.relpath(f, SOURCE_DIR)
        for doc in load_yaml_docs(rel):
            kinds.setdefault(doc.get("kind"), []).append((rel, doc))
    kust = kinds.get("Kustomization", [(None, {})])[0][1]
    listed = set(kust.get("resources", []))
    secrets = {doc["metadata"]["name"]: (rel, doc)
               for rel, doc in kinds.get("Secret", [])}
    ds = kinds.get("DaemonSet", [(None, None)])[0][1]
    if ds is None:
        return
    pod = ds["spec"]["template"]["spec"]
    c = container(pod, "tensorpagerd") or {}
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    tenants = env.get("TENSORPAGER_TENANTS_FILE")
    if not tenants:
        problem("the DaemonSet's tensorpagerd sets no TENSORPAGER_TENANTS_FILE")
        return
    directory, key = os.path.split(tenants)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    found = None
    for m in c.get("volumeMounts", []):
        if m.get("mountPath") != directory:
            continue
        if m.get("subPath") or m.get("subPathExpr"):
            problem("%s is mounted with subPath: Secret updates never reach "
                    "it" % directory)
        if m.get("readOnly") is not True:
            problem("%s is not mounted readOnly" % directory)
        v = volumes.get(m["name"], {})
        sources = [v] + v.get("projected", {}).get("sources", [])
        for src in sources:
            sec = src.get("secret")
            if not sec:
                continue
            name = sec.get("secretName") or sec.get("name")
            items = sec.get("items")
            if items is None or any(i["path"] == key for i in items):
                found = name
    if found is None:
        problem("no Secret volume is mounted at %s, where "
                "TENSORPAGER_TENANTS_FILE=%s points" % (directory, tenants))
        return
    if found not in secrets:
        problem("the DaemonSet mounts Secret %s, which deploy/k8s does not "
                "define" % found)
        return
    rel, secret = secrets[found]
    if os.path.basename(rel) not in listed:
        problem("kustomization.yaml does not list %s (Secret %s)" %
                (os.path.basename(rel), found))
    data = dict(secret.get("stringData") or {})
    if key not in data and key in (secret.get("data") or {}):
        data[key] = base64.b64decode(secret["data"][key]).decode()
    if key not in data:
        problem("Secret %s has no %s" % (found, key))
        return
    where = "%s (Secret %s, %s)" % (rel, found, key)
    for p in tenants_problems(yaml.safe_load(data[key]), where):
        problem(p)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(data[key])
        f.flush()
        tenants_file_accepted(f.name, where)
