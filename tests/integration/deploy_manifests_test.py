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

from deploy_common import (  # noqa: E402
    BINARY_DIR, SOURCE_DIR, TENANTS_FILE, container, dockerfile_instructions,
    load_yaml_docs, path, problem, problems, run, tenants_example_paths,
    tensorpagerd)
from deploy_tenants_check import check_tenants  # noqa: E402


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
