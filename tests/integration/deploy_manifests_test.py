#!/usr/bin/python3
"""Checks the deployment files: docker/, deploy/k8s, deploy/prometheus,
deploy/grafana, deploy/systemd.

  deploy_manifests_test.py static   lint and cross-check the files
  deploy_manifests_test.py metrics  every metric (and label value) that the
                                    dashboard and the rules query is one a
                                    live tensorpagerd exports

Exit code 0: passed; 1: failed (every problem listed); 77: skipped (a tool
the check needs is missing; the reason is printed).
"""

import base64
import glob
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

SOURCE_DIR = os.path.abspath(os.environ.get(
    "TP_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")))
BINARY_DIR = os.environ.get("TP_BINARY_DIR", os.path.join(SOURCE_DIR, "build"))
SKIP = 77

RULES = "deploy/prometheus/tensorpager-rules.yaml"
DASHBOARD = "deploy/grafana/tensorpager-dashboard.json"
GRPC_PORT, METRICS_PORT = 50051, 9464

YAMLLINT_CONFIG = """
extends: default
rules:
  line-length: {max: 120}
  document-start: disable
"""

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


# ---- static checks ----------------------------------------------------------

def yaml_files():
    files = sorted(glob.glob(path("deploy/k8s/*.yaml")) +
                   glob.glob(path("deploy/prometheus/*.y*ml")) +
                   glob.glob(path("deploy/grafana/provisioning/*/*.yaml")) +
                   [path("deploy/systemd/config.yaml"),
                    path("docker/compose.yaml")] + tenants_example_paths())
    return files


def check_yamllint():
    if shutil.which("yamllint") is None:
        problem("yamllint is missing (Debian: yamllint; deploy/install-deps.sh "
                "--test installs it)")
        return
    r = run(["yamllint", "-f", "parsable", "-d", YAMLLINT_CONFIG] +
            yaml_files())
    if r.returncode != 0:
        problem("yamllint:\n" + r.stdout + r.stderr)


def check_prometheus():
    if shutil.which("promtool") is None:
        problem("promtool is missing (Debian: prometheus)")
        return
    for cmd in (["promtool", "check", "rules", RULES],
                ["promtool", "test", "rules",
                 "deploy/prometheus/tensorpager-rules.test.yaml"],
                ["promtool", "check", "config",
                 "deploy/prometheus/prometheus.yml"]):
        r = run(cmd, cwd=SOURCE_DIR)
        if r.returncode != 0:
            problem(" ".join(cmd) + ":\n" + r.stdout + r.stderr)
    # The Kubernetes PrometheusRule carries the same groups.
    plain = load_yaml_docs(RULES)[0]["groups"]
    crd = load_yaml_docs("deploy/k8s/prometheusrule.yaml")[0]
    if crd.get("kind") != "PrometheusRule":
        problem("deploy/k8s/prometheusrule.yaml is not a PrometheusRule")
    elif crd["spec"]["groups"] != plain:
        problem("deploy/k8s/prometheusrule.yaml groups differ from " + RULES)


def dashboard_exprs(dashboard):
    exprs = []
    for panel in dashboard["panels"]:
        for t in panel.get("targets", []):
            exprs.append((panel["title"], t.get("expr", "")))
    return exprs


def check_dashboard():
    with open(path(DASHBOARD)) as f:
        d = json.load(f)
    for key in ("uid", "title", "panels", "templating", "schemaVersion"):
        if key not in d:
            problem("%s: no %s" % (DASHBOARD, key))
    ids = [p.get("id") for p in d["panels"]]
    if len(set(ids)) != len(ids):
        problem("%s: duplicate panel ids" % DASHBOARD)
    variables = {v["name"] for v in d["templating"]["list"]}
    for p in d["panels"]:
        if p["type"] == "row":
            continue
        gp = p.get("gridPos", {})
        if not all(k in gp for k in ("x", "y", "w", "h")) or \
                gp["x"] + gp["w"] > 24:
            problem("panel %r: bad gridPos %s" % (p.get("title"), gp))
        if not p.get("targets"):
            problem("panel %r has no query" % p.get("title"))
        for t in p.get("targets", []):
            if not t.get("expr"):
                problem("panel %r: target without expr" % p["title"])
            for var in re.findall(r"\$(\w+)", t.get("expr", "")):
                if var not in variables and not var.startswith("__"):
                    problem("panel %r uses undefined $%s" % (p["title"], var))
    # promtool parses every query (Grafana's variables filled in).
    if shutil.which("promtool") is None:
        return
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": "dashboard:panel_%d" % i,
         "expr": expr.replace("$__rate_interval", "5m")
                     .replace("$instance", ".*")}
        for i, (_, expr) in enumerate(dashboard_exprs(d))]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(rules, f)
        f.flush()
        r = run(["promtool", "check", "rules", f.name])
        if r.returncode != 0:
            problem("dashboard queries do not parse:\n" + r.stdout + r.stderr)


def container(spec, name):
    for c in spec.get("containers", []):
        if c["name"] == name:
            return c
    return None


def check_kubernetes():
    kinds = {}
    for f in sorted(glob.glob(path("deploy/k8s/*.yaml"))):
        for doc in load_yaml_docs(os.path.relpath(f, SOURCE_DIR)):
            kinds.setdefault(doc.get("kind"), []).append(doc)
    kust = kinds.get("Kustomization", [{}])[0]
    for res in kust.get("resources", []):
        if not os.path.exists(path("deploy/k8s/" + res)):
            problem("kustomization.yaml lists missing %s" % res)

    ds = kinds.get("DaemonSet", [None])[0]
    if ds is None:
        problem("no DaemonSet in deploy/k8s")
        return
    pod = ds["spec"]["template"]["spec"]
    c = container(pod, "tensorpagerd")
    if c is None:
        problem("DaemonSet has no tensorpagerd container")
        return
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if ports != {"grpc": GRPC_PORT, "metrics": METRICS_PORT}:
        problem("container ports %s, want grpc %d and metrics %d" %
                (ports, GRPC_PORT, METRICS_PORT))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        p = c.get(probe, {})
        if p.get("grpc", {}).get("port") != GRPC_PORT:
            problem("%s is not a native gRPC probe on port %d" %
                    (probe, GRPC_PORT))
    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in res.get(kind, {}):
                problem("tensorpagerd container has no %s.%s" % (kind, r))
    sc = c.get("securityContext", {})
    psc = pod.get("securityContext", {})
    if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
        problem("tensorpagerd container may run as root")
    if sc.get("readOnlyRootFilesystem") is not True:
        problem("tensorpagerd container's root filesystem is writable")
    if sc.get("allowPrivilegeEscalation") is not False:
        problem("tensorpagerd container allows privilege escalation")
    if pod.get("enableServiceLinks") is not False:
        problem("enableServiceLinks must be false (TENSORPAGER_* variables "
                "are settings)")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    data = volumes.get(mounts.get("/var/lib/tensorpager"), {})
    if "hostPath" not in data and "persistentVolumeClaim" not in data:
        problem("/var/lib/tensorpager is not on a hostPath or local volume")
    for name in mounts.values():
        if name not in volumes:
            problem("volumeMount %s has no volume" % name)
    grace = pod.get("terminationGracePeriodSeconds", 30)

    svc = kinds.get("Service", [None])[0]
    if svc is None:
        problem("no Service in deploy/k8s")
    else:
        for p in svc["spec"]["ports"]:
            if p["targetPort"] not in ports:
                problem("Service port %s targets unknown port %s" %
                        (p["name"], p["targetPort"]))
        sel = svc["spec"]["selector"]
        labels = ds["spec"]["template"]["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in sel.items()):
            problem("Service selector does not select the DaemonSet's pods")
    sm = kinds.get("ServiceMonitor", [None])[0]
    if sm is None:
        problem("no ServiceMonitor in deploy/k8s")
    elif svc is not None:
        names = {p["name"] for p in svc["spec"]["ports"]}
        for e in sm["spec"]["endpoints"]:
            if e.get("port") not in names:
                problem("ServiceMonitor endpoint port %s not in Service" %
                        e.get("port"))

    # The ConfigMap's config file is one tensorpagerd accepts, with a
    # shutdown grace inside the pod's termination grace period.
    cm = kinds.get("ConfigMap", [None])[0]
    if cm is None:
        problem("no ConfigMap with config.yaml in deploy/k8s")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(cm["data"]["config.yaml"])
        f.flush()
        config = print_config(f.name)
    if config is not None:
        grace_ms = int(config["shutdown_grace_ms"])
        if grace_ms >= grace * 1000:
            problem("shutdown_grace_ms %d is not below "
                    "terminationGracePeriodSeconds %d" % (grace_ms, grace))

    if shutil.which("kubectl"):
        r = run(["kubectl", "kustomize", path("deploy/k8s")])
        if r.returncode != 0:
            problem("kubectl kustomize deploy/k8s:\n" + r.stderr)
    else:
        print("note: kubectl not installed, kustomize build not checked")


def print_config(config_path):
    """tensorpagerd --print_config with the file; the settings, or None."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TENSORPAGER_")}
    r = run([tensorpagerd(), "--print_config", "--config=" + config_path],
            env=env)
    if r.returncode != 0:
        problem("tensorpagerd rejects %s: %s" % (config_path, r.stderr))
        return None
    return yaml.safe_load(r.stdout)


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


def check_container_files():
    inst = dockerfile_instructions()
    stages = [i for i in inst if i.upper().startswith("FROM ")]
    if len(stages) < 2:
        problem("docker/Dockerfile is not multi-stage")
    runtime = inst[inst.index(stages[-1]):]
    text = "\n".join(runtime)
    for want, why in (
            (r"^EXPOSE .*\b%d\b" % GRPC_PORT, "EXPOSE the gRPC port"),
            (r"^EXPOSE .*\b%d\b" % METRICS_PORT, "EXPOSE the metrics port"),
            (r"^VOLUME .*/var/lib/tensorpager", "declare the data volume"),
            (r"^USER (?!root|0\b)", "run as a non-root USER"),
            (r"^HEALTHCHECK .*tpctl.*\bhealth\b", "health-check with tpctl"),
            (r"TENSORPAGER_GRPC_ADDRESS=0\.0\.0\.0:%d" % GRPC_PORT,
             "listen on 0.0.0.0"),
            (r"TENSORPAGER_METRICS_ADDRESS=0\.0\.0\.0:%d" % METRICS_PORT,
             "serve metrics on 0.0.0.0")):
        if not re.search(want, text, re.M):
            problem("docker/Dockerfile runtime stage does not %s" % why)
    if "deploy/install-deps.sh" not in "\n".join(inst):
        problem("docker/Dockerfile does not install with deploy/install-deps.sh")

    compose = load_yaml_docs("docker/compose.yaml")[0]
    for name, svc in compose.get("services", {}).items():
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0] if isinstance(vol, str) else \
                vol.get("source", "")
            if source.startswith("."):
                if not os.path.exists(os.path.join(path("docker"), source)):
                    problem("compose service %s mounts missing %s" %
                            (name, source))
    if "tensorpagerd" not in compose.get("services", {}):
        problem("docker/compose.yaml has no tensorpagerd service")


def check_systemd():
    unit = path("deploy/systemd/tensorpagerd.service")
    # --print_config does not read the tenants file: /etc/tensorpager/
    # tenants.yaml need not exist here.
    config = print_config(path("deploy/systemd/config.yaml"))
    if config is not None and config.get("tenants_file") != TENANTS_FILE:
        problem("deploy/systemd/config.yaml: tenants_file is %r, want %s "
                "(0.0.0.0 without authentication does not start)" %
                (config.get("tenants_file"), TENANTS_FILE))
    with open(unit) as f:
        text = f.read()
    if not re.search(r"^ExecReload=.*kill -HUP \$MAINPID", text, re.M):
        problem("tensorpagerd.service has no ExecReload sending SIGHUP "
                "(reloads the tenants file)")
    if "tenants.yaml" not in text:
        problem("tensorpagerd.service does not say how to install "
                "tenants.yaml")
    if shutil.which("systemd-analyze") is None:
        print("note: systemd-analyze not installed, unit not verified")
        return
    with tempfile.TemporaryDirectory() as d:
        # verify insists that ExecStart= exists on this machine.
        copy = os.path.join(d, "tensorpagerd.service")
        with open(unit) as f, open(copy, "w") as out:
            out.write(re.sub(r"^ExecStart=\S+", "ExecStart=" + tensorpagerd(),
                             f.read(), flags=re.M))
        r = run(["systemd-analyze", "verify", copy])
        messages = [line for line in (r.stdout + r.stderr).splitlines()
                    if line.strip()]
        if r.returncode != 0 or messages:
            problem("systemd-analyze verify tensorpagerd.service:\n" +
                    "\n".join(messages))


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


def static():
    check_yamllint()
    check_prometheus()
    check_dashboard()
    check_kubernetes()
    check_container_files()
    check_systemd()
    check_tenants()


# ---- metrics against a live server -------------------------------------------

SELECTOR = re.compile(r"\b(tensorpager_[a-zA-Z0-9_]+)\s*(\{[^}]*\})?")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def queried_metrics():
    """(metric, {label: [values]}, where) for every selector queried."""
    exprs = []
    with open(path(DASHBOARD)) as f:
        for title, expr in dashboard_exprs(json.load(f)):
            exprs.append(("dashboard panel %r" % title, expr))
    for group in load_yaml_docs(RULES)[0]["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            exprs.append(("rule %s" % name, rule["expr"]))
    out = []
    for where, expr in exprs:
        for m in SELECTOR.finditer(expr):
            wanted = {}
            for label, op, value in MATCHER.findall(m.group(2) or ""):
                if op == "=":
                    wanted[label] = [value]
                elif op == "=~" and re.fullmatch(r"[\w|]+", value):
                    wanted[label] = value.split("|")
            out.append((m.group(1), wanted, where))
    return out


def scrape(url):
    """{metric name: [label dict, ...]} from a Prometheus text exposition."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s", line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"',
                                     m.group(3) or ""))
            series.setdefault(m.group(1), []).append(labels)
    return series


class Server:
    def __init__(self, workdir):
        self.ready = os.path.join(workdir, "ready")
        self.log = open(os.path.join(workdir, "server.log"), "wb")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("TENSORPAGER_")}
        self.proc = subprocess.Popen(
            [tensorpagerd(), "--data_dir=" + os.path.join(workdir, "data"),
             "--grpc_address=127.0.0.1:0", "--metrics_address=127.0.0.1:0",
             "--ready_file=" + self.ready, "--ram_budget=32MiB"],
            stdout=self.log, stderr=self.log, env=env, start_new_session=True)
        self.ports = self._wait()

    def _wait(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("FAIL: tensorpagerd exited during startup")
            if os.path.exists(self.ready):
                with open(self.ready) as f:
                    ports = dict(line.strip().split("=", 1)
                                 for line in f if "=" in line)
                if "grpc_port" in ports:
                    return {k: int(v) for k, v in ports.items()}
            time.sleep(0.02)
        self.stop()
        raise SystemExit("FAIL: tensorpagerd not ready in 60 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def exercise(target, workdir):
    """Traffic through every path the queries look at, with tpctl."""
    tpctl = os.path.join(BINARY_DIR, "client_sdk", "tpctl", "tpctl")
    if not os.access(tpctl, os.X_OK):
        raise SystemExit("FAIL: %s is not built" % tpctl)
    blob = os.path.join(workdir, "blob")
    with open(blob, "wb") as f:
        f.write(os.urandom(1 << 20))
    # Reads go to a file of the test's own, never to a device node: run as
    # root, a tpctl that replaced its destination (issue 10) turned
    # /dev/null into a regular file for the whole machine.
    got = os.path.join(workdir, "got")
    steps = [["put", "m0", blob, "--region_type", "kv_cache"],
             ["put", "m1", blob, "--sequence", "s:0"],
             ["put", "m2", blob, "--sequence", "s:1"],
             ["swap-out", "m0", "m1", "m2"],
             ["get", "m0", got],
             ["get", "m1", got],
             ["get", "m0", got],
             ["info", "absent"]]
    for step in steps:
        r = run([tpctl, "--target", target] + step)
        if r.returncode != 0 and step[0] != "info":
            raise SystemExit("FAIL: tpctl %s: %s" % (" ".join(step), r.stderr))
    if not stat.S_ISCHR(os.stat(os.devnull).st_mode):
        raise SystemExit("FAIL: %s is no longer a character device" %
                         os.devnull)


def metrics():
    workdir = tempfile.mkdtemp(prefix="tensorpager-metrics-")
    server = Server(workdir)
    try:
        port = server.ports.get("metrics_port", 0)
        if port == 0:
            print("SKIP: this tensorpagerd serves no /metrics endpoint")
            return SKIP
        exercise("127.0.0.1:%d" % server.ports["grpc_port"], workdir)
        exported = scrape("http://127.0.0.1:%d/metrics" % port)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    for name, wanted, where in queried_metrics():
        if name not in exported:
            problem("%s queries %s, which tensorpagerd does not export" %
                    (where, name))
            continue
        for label, values in wanted.items():
            have = {s.get(label) for s in exported[name]} - {None}
            if not have:
                problem("%s: %s has no label %r" % (where, name, label))
            for v in values:
                if v not in have:
                    problem("%s: %s{%s=%r} is never exported (have %s)" %
                            (where, name, label, v, sorted(have)))
    print("checked %d queried selectors against %d exported metrics" %
          (len(queried_metrics()), len(exported)))
    return 0


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "static":
        static()
    elif mode == "metrics":
        if metrics() == SKIP:
            return SKIP
    else:
        print(__doc__)
        return 2
    if problems:
        print("%d problem(s)" % len(problems))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
