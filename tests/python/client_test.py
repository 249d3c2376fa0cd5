#!/usr/bin/python3
"""A Python client against a real tensorpagerd: stubs generated from protos/
with protoc and Debian's grpc_python_plugin, run with Debian's python3-grpcio
and python3-protobuf. The test starts its own server on a free loopback port
(port 0 + ready file) with a temporary data dir, and stops it at the end.

Exit code 77 (ctest: skipped) when python3-grpcio or the plugin is missing.
"""

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("TP_SOURCE_DIR", os.path.join(HERE, "..", ".."))
BINARY_DIR = os.environ.get("TP_BINARY_DIR", os.path.join(SOURCE_DIR, "build"))
SKIP = 77

sys.path.insert(0, HERE)
import tensorpager_example as example  # noqa: E402


def prerequisites():
    """Returns why the test cannot run here, or None."""
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401
    except ImportError as e:
        return "python3-grpcio/python3-protobuf missing (%s); " \
               "deploy/install-deps.sh --test installs them" % e
    if not os.access(example.GRPC_PYTHON_PLUGIN, os.X_OK):
        return "%s missing (Debian package protobuf-compiler-grpc)" % \
            example.GRPC_PYTHON_PLUGIN
    if shutil.which("protoc") is None:
        return "protoc missing (Debian package protobuf-compiler)"
    return None


class ServerProcess:
    """tensorpagerd on 127.0.0.1:0 with a temporary data dir."""

    def __init__(self, workdir, *flags):
        self.ready_file = os.path.join(workdir, "ready")
        self.log_path = os.path.join(workdir, "server.log")
        binary = os.path.join(BINARY_DIR, "server", "tensorpagerd")
        if not os.access(binary, os.X_OK):
            raise RuntimeError("%s not built" % binary)
        cmd = [binary, "--data_dir=" + os.path.join(workdir, "data"),
               "--grpc_address=127.0.0.1:0", "--metrics_address=127.0.0.1:0",
               "--ready_file=" + self.ready_file] + list(flags)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        self.port = self._wait_ready(60)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("tensorpagerd exited during startup:\n" +
                                   self.read_log())
            if os.path.exists(self.ready_file):
                with open(self.ready_file) as f:
                    for line in f:
                        key, _, value = line.strip().partition("=")
                        if key == "grpc_port" and value.isdigit():
                            return int(value)
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("tensorpagerd not ready in %ds:\n%s" %
                           (timeout, self.read_log()))

    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        """SIGTERM, then SIGKILL if it lingers; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class PythonClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        import grpc
        cls.grpc = grpc
        cls.workdir = tempfile.mkdtemp(prefix="tensorpager-py-")
        stubs = os.path.join(cls.workdir, "gen")
        example.generate_stubs(os.path.join(SOURCE_DIR, "protos"), stubs)
        (cls.pb2, cls.pb2_grpc, cls.health_pb2,
         cls.health_pb2_grpc) = example.import_stubs(stubs)
        # LRU explicitly: the hardware profile may pick another algorithm.
        cls.server = ServerProcess(cls.workdir, "--ram_budget=64MiB",
                                   "--algorithm=lru")
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.server.port)
        grpc.channel_ready_future(cls.channel).result(timeout=30)
        cls.client = example.TensorPagerClient(cls.channel, cls.pb2,
                                               cls.pb2_grpc)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        code = cls.server.stop()
        shutil.rmtree(cls.workdir, ignore_errors=True)
        if code != 0:
            raise AssertionError("tensorpagerd exited with %s" % code)

    def assertCode(self, code, fn, *args):
        with self.assertRaises(self.grpc.RpcError) as ctx:
            fn(*args)
        self.assertEqual(ctx.exception.code(), code, ctx.exception.details())
        self.assertTrue(ctx.exception.details(), "errors carry a message")

    def test_register_write_swap_read_and_status(self):
        pb2 = self.pb2
        blocks = {"py-small": os.urandom(4096),
                  "py-multi-chunk": os.urandom(2 * example.CHUNK_BYTES + 7)}
        for block_id, data in blocks.items():
            info = self.client.register(block_id, len(data),
                                        region_type=pb2.KV_CACHE)
            self.assertEqual(info.tier, pb2.TIER_EMPTY)
            written = self.client.write(block_id, data)
            self.assertEqual(written.bytes_written, len(data))
            self.assertEqual(written.block.tier, pb2.TIER_RAM)

        moved = self.client.swap(pb2.SWAP_OUT, list(blocks))
        self.assertEqual(moved.blocks_moved, 2)
        self.assertEqual(moved.bytes_moved, sum(map(len, blocks.values())))
        for block_id in blocks:
            self.assertEqual(self.client.get(block_id).tier, pb2.TIER_DISK)

        for block_id, data in blocks.items():
            info, hit, back = self.client.read(block_id)
            self.assertFalse(hit, "the block came from disk")
            self.assertEqual(back, data, block_id)
            self.assertEqual(info.size_bytes, len(data))
        self.assertEqual(self.client.get("py-small").tier,
                         pb2.TIER_RAM_AND_DISK)
        info, hit, part = self.client.read("py-multi-chunk", 100, 50)
        self.assertTrue(hit)
        self.assertEqual(part, blocks["py-multi-chunk"][100:150])

        status = self.client.status()
        self.assertGreaterEqual(status.blocks_registered, 2)
        self.assertGreaterEqual(status.efficiency.swap_outs, 2)
        self.assertGreaterEqual(status.efficiency.swap_ins, 2)
        self.assertEqual(status.algorithm, pb2.LRU)
        for block_id in blocks:
            self.client.unregister(block_id)

    def test_errors_are_precise_grpc_codes(self):
        codes = self.grpc.StatusCode
        self.assertCode(codes.NOT_FOUND, self.client.get, "py-absent")
        self.assertCode(codes.INVALID_ARGUMENT, self.client.register,
                        "py-empty", 0)
        self.client.register("py-dup", 16)
        self.assertCode(codes.ALREADY_EXISTS, self.client.register,
                        "py-dup", 16)
        self.client.write("py-dup", b"x" * 16)
        self.assertCode(codes.OUT_OF_RANGE, self.client.read, "py-dup", 17)
        self.client.unregister("py-dup")

    def test_standard_health_service_is_serving(self):
        stub = self.health_pb2_grpc.HealthStub(self.channel)
        resp = stub.Check(self.health_pb2.HealthCheckRequest(), timeout=10)
        self.assertEqual(resp.status,
                         self.health_pb2.HealthCheckResponse.SERVING)

    def test_reflection_describes_the_service(self):
        import reflection_pb2
        import reflection_pb2_grpc
        from google.protobuf import descriptor_pb2
        stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="tensorpager.v1.TensorPager")]
        responses = list(stub.ServerReflectionInfo(iter(requests), timeout=10))
        services = [s.name for s in
                    responses[0].list_services_response.service]
        self.assertIn("tensorpager.v1.TensorPager", services)
        methods = set()
        for raw in responses[1].file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
            for service in fd.service:
                methods.update(m.name for m in service.method)
        self.assertTrue({"RegisterBlock", "WriteBlock", "Access", "Swap",
                         "Status", "WatchPressure"} <= methods, methods)

    def test_example_demo(self):
        out = io.StringIO()
        example.demo(self.client, self.pb2, out)
        self.assertIn("swapped out", out.getvalue())
        self.assertIn("read %d bytes back (hit=False)" %
                      (3 * example.CHUNK_BYTES + 123), out.getvalue())
        self.assertCode(self.grpc.StatusCode.NOT_FOUND, self.client.get,
                        "python-demo")


if __name__ == "__main__":
    why = prerequisites()
    if why:
        print("SKIP: " + why)
        sys.exit(SKIP)
    unittest.main(verbosity=2)
