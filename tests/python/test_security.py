"""Tenants, tokens and TLS through the tensorpager package, against a real
tensorpagerd started with a tenants file (and, in the TLS fixture, with
certificates this module makes with the openssl command).

Tenants: "a" and "b" are client tenants (namespaces a, a/* and b) proven
by bearer tokens; "a" is also named by a client certificate's SAN;
"root" is an admin. No tenant lists a uid, so a local client without a
token is never named by its user.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional

import pytest

import tensorpager
from conftest import close_server, connect, start_server, wait_until
from tensorpagerd_process import ServerProcess

CLIENT_SAN = "engine-a.example"


@dataclass
class Tokens:
    a: str
    b: str
    admin: str


@dataclass
class Certs:
    ca: str
    client_cert: str
    client_key: str
    server_cert: str
    server_key: str


@dataclass
class Deployment:
    server: ServerProcess
    tokens: Tokens
    tenants_file: str
    certs: Optional[Certs] = None


def new_tokens() -> Tokens:
    return Tokens(a="tok-a-" + secrets.token_hex(16),
                  b="tok-b-" + secrets.token_hex(16),
                  admin="tok-admin-" + secrets.token_hex(16))


def token_hash(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def write_tenants(path: str, tokens: Dict[str, List[str]]) -> None:
    """The tenants file: a and b clients, root an admin; `tokens` maps
    each tenant name to its plain tokens (hashed here)."""
    def hashes(name: str) -> str:
        return "[" + ", ".join(f'"{token_hash(t)}"'
                               for t in tokens.get(name, [])) + "]"

    text = (
        "tenants:\n"
        "  - name: a\n"
        "    role: client\n"
        '    namespaces: [a, "a/*"]\n'
        f"    tokens: {hashes('a')}\n"
        f"    tls_sans: [{CLIENT_SAN}]\n"
        "  - name: b\n"
        "    role: client\n"
        "    namespaces: [b]\n"
        f"    tokens: {hashes('b')}\n"
        "  - name: root\n"
        "    role: admin\n"
        '    namespaces: ["*"]\n'
        f"    tokens: {hashes('root')}\n")
    # Written whole and renamed, so a reload never reads half a file.
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_default_tenants(path: str, tokens: Tokens) -> None:
    write_tenants(path, {"a": [tokens.a], "b": [tokens.b],
                         "root": [tokens.admin]})


def openssl(directory: pathlib.Path, *args: str) -> None:
    done = subprocess.run(["openssl", *args], cwd=directory,
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, \
        f"openssl {' '.join(args)} failed:\n{done.stderr}"


def make_cert(directory: pathlib.Path, name: str, san: str) -> None:
    """`name`.crt/.key signed by ca.crt, with subjectAltName `san`."""
    (directory / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    openssl(directory, "req", "-newkey", "rsa:2048", "-nodes", "-keyout",
            f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt",
            "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{name}.crt",
            "-days", "2", "-extfile", f"{name}.ext")


def make_certs(directory: pathlib.Path) -> Certs:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is missing (apt-get install "
                    "openssl); it makes the TLS tests' certificates")
    openssl(directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj",
            "/CN=tensorpager-test-ca")
    make_cert(directory, "server", "IP:127.0.0.1,DNS:localhost")
    make_cert(directory, "client", f"DNS:{CLIENT_SAN}")
    return Certs(ca=str(directory / "ca.crt"),
                 client_cert=str(directory / "client.crt"),
                 client_key=str(directory / "client.key"),
                 server_cert=str(directory / "server.crt"),
                 server_key=str(directory / "server.key"))


def start_deployment(directory: pathlib.Path,
                     certs: Optional[Certs] = None,
                     mutual: bool = False) -> Deployment:
    """tensorpagerd with a fresh tenants file in `directory`; TLS with
    `certs`, requiring client certificates when `mutual`."""
    tokens = new_tokens()
    tenants_file = str(directory / "tenants.yaml")
    write_default_tenants(tenants_file, tokens)
    flags = [f"--tenants_file={tenants_file}"]
    if certs is not None:
        flags += [f"--tls_cert_file={certs.server_cert}",
                  f"--tls_key_file={certs.server_key}"]
        if mutual:
            flags.append(f"--tls_client_ca_file={certs.ca}")
    return Deployment(start_server(flags), tokens, tenants_file, certs)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    """tensorpagerd with the tenants file, plaintext."""
    d = start_deployment(tmp_path_factory.mktemp("tenants"))
    yield d
    close_server(d.server)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_deployment(tmp_path_factory: pytest.TempPathFactory,
                   certs: Certs) -> Iterator[Deployment]:
    """tensorpagerd with the tenants file and TLS (server certificate
    only: tenants prove themselves by token)."""
    d = start_deployment(tmp_path_factory.mktemp("tls"), certs)
    yield d
    close_server(d.server)


@pytest.fixture(scope="module")
def mtls_deployment(tmp_path_factory: pytest.TempPathFactory,
                    certs: Certs) -> Iterator[Deployment]:
    """tensorpagerd with the tenants file and mutual TLS: every client
    needs a certificate signed by the test CA."""
    d = start_deployment(tmp_path_factory.mktemp("mtls"), certs, mutual=True)
    yield d
    close_server(d.server)


@pytest.fixture(params=["shm", "tcp"])
def path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def tenant_client(target: str, namespace: str, token: str,
                  path: str = "tcp", **options) -> tensorpager.Client:
    return connect(target, path, namespace=namespace, token=token, **options)


def unready_client(target: str, **options) -> tensorpager.Client:
    """A client whose calls are expected to fail: gRPC messages only,
    short deadlines, no retries (wait_until_ready would not succeed)."""
    options.setdefault("namespace", "a")
    return tensorpager.Client(target, shared_memory_bytes=0, timeout=10.0,
                              max_retries=0, **options)


# ---- Tokens ----


def test_token_works(deployment: Deployment, path: str) -> None:
    key = f"token-works-{path}"
    value = secrets.token_bytes(3000)
    with tenant_client(deployment.server.target, "a", deployment.tokens.a,
                       path) as c:
        assert c.put(key, value).created
        assert c.exists(key)
        assert c.get(key) == value
        results = c.batch_put([f"{key}/1", f"{key}/2"], [value, value[:7]])
        assert all(r.ok for r in results), results
        got = c.batch_get([f"{key}/1", f"{key}/2"])
        assert [g.value for g in got] == [value, value[:7]]
        assert [b["id"] for b in c.list_blocks(key)] == \
            [key, f"{key}/1", f"{key}/2"]
        # The tenant's token also sets up the shared-memory arena.
        assert c.batch_path.shared_memory == (path == "shm"), c.batch_path
        assert c.delete_prefix(key).blocks_removed == 3


def test_no_token_is_unauthenticated(deployment: Deployment) -> None:
    with unready_client(deployment.server.target, token="") as c:
        with pytest.raises(tensorpager.Unauthenticated) as e:
            c.put("no-token", b"x")
        assert "authorization: Bearer <token>" in e.value.message
        with pytest.raises(tensorpager.Unauthenticated):
            c.status()


def test_wrong_token_is_unauthenticated(deployment: Deployment) -> None:
    with unready_client(deployment.server.target,
                        token="not-" + deployment.tokens.a) as c:
        with pytest.raises(tensorpager.Unauthenticated) as e:
            c.exists("wrong-token")
        assert "token" in e.value.message
        assert "tenants file" in e.value.message


def test_token_from_environment(deployment: Deployment,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENSORPAGER_TOKEN", deployment.tokens.b)
    with connect(deployment.server.target, "tcp", namespace="b") as c:
        c.put("from-env", b"env")
        assert c.get("from-env") == b"env"
        assert c.status()["tenant"] == "b"
        c.delete("from-env")
    # An explicit "" sends no token, whatever the environment says.
    with unready_client(deployment.server.target, namespace="b",
                        token="") as c:
        with pytest.raises(tensorpager.Unauthenticated):
            c.exists("from-env")


# ---- Namespaces ----


def test_other_tenants_namespace_is_denied(deployment: Deployment,
                                           path: str) -> None:
    target = deployment.server.target
    key = f"secret-{path}"
    value = secrets.token_bytes(5000)
    with tenant_client(target, "a", deployment.tokens.a, path) as a, \
            tenant_client(target, "a", deployment.tokens.b, path) as b:
        a.put(key, value)
        version = a.info(key)["version"]

        def denied(call_name: str, call, *args) -> None:
            with pytest.raises(tensorpager.PermissionDenied) as e:
                result = call(*args)
                if call_name == "list_blocks":
                    list(result)
            assert "tenant 'b' may not use namespace 'a'" in \
                e.value.message, (call_name, e.value.message)

        denied("put", b.put, key, b"overwrite")
        denied("put", b.put, "new-" + key, b"x")
        denied("get", b.get, key)
        denied("exists", b.exists, key)
        denied("delete", b.delete, key)
        denied("batch_put", b.batch_put, [key], [b"overwrite"])
        denied("batch_get", b.batch_get, [key])
        denied("lookup", b.lookup, [key])
        denied("list_blocks", b.list_blocks, "")
        denied("delete_prefix", b.delete_prefix, key)

        assert a.get(key) == value
        assert a.info(key)["version"] == version
        assert not a.exists("new-" + key)
        a.delete(key)


def test_sub_namespace_pattern(deployment: Deployment) -> None:
    target = deployment.server.target
    with tenant_client(target, "a/sub", deployment.tokens.a) as a:
        a.put("k", b"sub")
        assert a.get("k") == b"sub"
        a.delete("k")
    with tenant_client(target, "b/sub", deployment.tokens.b) as b:
        with pytest.raises(tensorpager.PermissionDenied):
            b.put("k", b"sub")


def test_status_shows_own_share(deployment: Deployment) -> None:
    target = deployment.server.target
    with tenant_client(target, "a", deployment.tokens.a) as a, \
            tenant_client(target, "b", deployment.tokens.b) as b:
        a.batch_put(["share/1", "share/2", "share/3"], [b"1", b"2", b"3"])
        b.put("share/1", b"b")
        a_status = a.status()
        b_status = b.status()
        assert a_status["tenant"] == "a"
        assert b_status["tenant"] == "b"
        assert a_status["blocks_registered"] == 3
        assert b_status["blocks_registered"] == 1
        # Its own usage only, and none of the server-wide client list.
        assert [t["name"] for t in a_status["tenants"]] == ["a"]
        assert a_status["tenants"][0]["blocks"] == 3
        assert [t["name"] for t in b_status["tenants"]] == ["b"]
        assert not a_status.get("clients")
        with tenant_client(target, "", deployment.tokens.admin) as admin:
            usage = {t["name"]: t for t in admin.status()["tenants"]}
        assert usage["a"]["blocks"] == 3
        assert usage["b"]["blocks"] == 1
        a.delete_prefix("share/")
        b.delete("share/1")


# ---- TLS ----


def test_tls_with_token(tls_deployment: Deployment, path: str) -> None:
    certs = tls_deployment.certs
    assert certs is not None
    with tenant_client(tls_deployment.server.target, "a",
                       tls_deployment.tokens.a, path,
                       tls_ca_file=certs.ca) as c:
        c.put(f"tls-{path}", b"over tls")
        assert c.get(f"tls-{path}") == b"over tls"
        assert c.status()["tenant"] == "a"
        c.delete(f"tls-{path}")


def test_tls_server_name(tls_deployment: Deployment) -> None:
    certs = tls_deployment.certs
    assert certs is not None
    with tenant_client(tls_deployment.server.target, "b",
                       tls_deployment.tokens.b, tls_ca_file=certs.ca,
                       tls_server_name="localhost") as c:
        assert c.status()["tenant"] == "b"


def test_mutual_tls_names_tenant(mtls_deployment: Deployment) -> None:
    certs = mtls_deployment.certs
    assert certs is not None
    with tenant_client(mtls_deployment.server.target, "a", "",
                       tls_ca_file=certs.ca, tls_cert_file=certs.client_cert,
                       tls_key_file=certs.client_key) as c:
        assert c.status()["tenant"] == "a"
        c.put("mtls", b"by certificate")
        assert c.get("mtls") == b"by certificate"
        c.delete("mtls")
    with tenant_client(mtls_deployment.server.target, "b", "",
                       tls_ca_file=certs.ca, tls_cert_file=certs.client_cert,
                       tls_key_file=certs.client_key) as c:
        with pytest.raises(tensorpager.PermissionDenied):
            c.exists("mtls")


def test_tls_without_credentials(tls_deployment: Deployment) -> None:
    certs = tls_deployment.certs
    assert certs is not None
    with unready_client(tls_deployment.server.target, token="",
                        tls_ca_file=certs.ca) as c:
        with pytest.raises(tensorpager.Unauthenticated) as e:
            c.exists("anonymous")
        assert "Bearer" in e.value.message


def test_plaintext_client_to_tls_server(tls_deployment: Deployment) -> None:
    with unready_client(tls_deployment.server.target,
                        token=tls_deployment.tokens.a) as c:
        with pytest.raises(tensorpager.Unavailable):
            c.status()


# ---- Reload ----


@pytest.fixture
def own_deployment(tmp_path: pathlib.Path) -> Iterator[Deployment]:
    """A deployment of the test's own, for tests that change its file."""
    d = start_deployment(tmp_path)
    yield d
    close_server(d.server)


def test_revoked_token_refused_after_sighup(own_deployment: Deployment
                                            ) -> None:
    d = own_deployment
    target = d.server.target
    replacement = "tok-a2-" + secrets.token_hex(16)
    with tenant_client(target, "a", d.tokens.a) as old:
        old.put("before", b"kept")

        write_tenants(d.tenants_file, {"a": [replacement], "b": [d.tokens.b],
                                       "root": [d.tokens.admin]})
        assert d.server.proc is not None
        d.server.proc.send_signal(signal.SIGHUP)

        def refused() -> bool:
            try:
                old.exists("before")
            except tensorpager.Unauthenticated:
                return True
            return False

        assert wait_until(refused, 30), \
            "the revoked token still works:\n" + d.server.log()
        with pytest.raises(tensorpager.Unauthenticated):
            old.put("after", b"x")

    with tenant_client(target, "a", replacement) as new:
        assert new.get("before") == b"kept"
    with tenant_client(target, "b", d.tokens.b) as b:
        assert b.status()["tenant"] == "b"
    assert d.server.proc is not None and d.server.proc.poll() is None


def test_mutual_tls_token_names_tenant(mtls_deployment: Deployment) -> None:
    """A token sent with the certificate names its own tenant."""
    certs = mtls_deployment.certs
    assert certs is not None
    with tenant_client(mtls_deployment.server.target, "b",
                       mtls_deployment.tokens.b, tls_ca_file=certs.ca,
                       tls_cert_file=certs.client_cert,
                       tls_key_file=certs.client_key) as c:
        assert c.status()["tenant"] == "b"
        c.put("mtls-token", b"b's")
        c.delete("mtls-token")


def test_mutual_tls_without_certificate(mtls_deployment: Deployment) -> None:
    certs = mtls_deployment.certs
    assert certs is not None
    with unready_client(mtls_deployment.server.target,
                        token=mtls_deployment.tokens.a,
                        tls_ca_file=certs.ca) as c:
        with pytest.raises(tensorpager.Unavailable):
            c.status()
