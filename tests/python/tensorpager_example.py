#!/usr/bin/python3
"""Calling tensorpagerd from Python with stubs generated from protos/.

Generate the stubs once (Debian: protobuf-compiler, python3-grpcio,
python3-protobuf and the grpc_python_plugin of protobuf-compiler-grpc):

    python3 tests/python/tensorpager_example.py --generate-stubs gen/
    # runs: protoc -I protos --python_out=gen --grpc_python_out=gen \
    #   --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin \
    #   protos/tensorpager/v1/tensorpager.proto   (+ health, reflection)

then, against a running server:

    python3 tests/python/tensorpager_example.py --stubs gen/ \
        --target 127.0.0.1:50051

The demo registers a block, writes it, swaps it out to the NVMe tier, reads
it back (a swap-in), checks the bytes and prints the server's Status.

grpc-proto's health.proto (and reflection.proto) are generated into folders
of their own (gen/health/, gen/reflection/) as top-level modules: their
package path "grpc/" would collide with the grpcio package itself.
"""

import argparse
import os
import subprocess
import sys

CHUNK_BYTES = 1 << 20  # WriteBlock messages carry at most 1 MiB each
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"


# grpc-proto's standard services, each generated into a folder of its own.
STANDARD_PROTOS = {"health": "grpc/health/v1/health.proto",
                   "reflection": "grpc/reflection/v1alpha/reflection.proto"}


def generate_stubs(proto_root, out_dir, plugin=GRPC_PYTHON_PLUGIN):
    """Runs protoc for the public proto and the standard protos."""
    common = ["protoc", "--plugin=protoc-gen-grpc_python=" + plugin]
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run(
        common + ["-I", proto_root, "--python_out=" + out_dir,
                  "--grpc_python_out=" + out_dir,
                  os.path.join(proto_root, "tensorpager/v1/tensorpager.proto")],
        check=True)
    for folder, proto in STANDARD_PROTOS.items():
        target = os.path.join(out_dir, folder)
        os.makedirs(target, exist_ok=True)
        include = os.path.join(proto_root, os.path.dirname(proto))
        subprocess.run(
            common + ["-I", include, "--python_out=" + target,
                      "--grpc_python_out=" + target,
                      os.path.join(proto_root, proto)],
            check=True)


def import_stubs(stub_dir):
    """Imports the generated modules; returns (pb2, pb2_grpc, health_pb2,
    health_pb2_grpc)."""
    for folder in [""] + list(STANDARD_PROTOS):
        path = os.path.join(stub_dir, folder)
        if path not in sys.path:
            sys.path.insert(0, path)
    from tensorpager.v1 import tensorpager_pb2, tensorpager_pb2_grpc
    import health_pb2
    import health_pb2_grpc
    return tensorpager_pb2, tensorpager_pb2_grpc, health_pb2, health_pb2_grpc


class TensorPagerClient:
    """A thin convenience layer over the generated stub."""

    def __init__(self, channel, pb2, pb2_grpc, namespace="", timeout=30):
        self.pb2 = pb2
        self.stub = pb2_grpc.TensorPagerStub(channel)
        self.namespace = namespace
        self.timeout = timeout

    def register(self, block_id, size, region_type=None, pinned=False,
                 labels=None):
        req = self.pb2.RegisterBlockRequest(
            namespace=self.namespace, id=block_id, size_bytes=size,
            region_type=region_type or self.pb2.TENSOR_DATA, pinned=pinned,
            labels=labels or {})
        return self.stub.RegisterBlock(req, timeout=self.timeout).block

    def write(self, block_id, data, durable=None):
        """Streams data in 1 MiB messages; returns the WriteBlockResponse."""
        def messages():
            for offset in range(0, max(len(data), 1), CHUNK_BYTES):
                msg = self.pb2.WriteBlockRequest(
                    data=data[offset:offset + CHUNK_BYTES])
                if offset == 0:
                    msg.namespace = self.namespace
                    msg.id = block_id
                    msg.total_bytes = len(data)
                    if durable is not None:
                        msg.durable = durable
                yield msg
        return self.stub.WriteBlock(messages(), timeout=self.timeout)

    def read(self, block_id, offset=0, length=0):
        """Returns (BlockInfo, hit, bytes)."""
        req = self.pb2.AccessRequest(namespace=self.namespace, id=block_id,
                                     offset=offset, length=length)
        info, hit, parts = None, False, []
        for resp in self.stub.Access(req, timeout=self.timeout):
            if resp.HasField("block"):
                info, hit = resp.block, resp.hit
            parts.append(resp.data)
        return info, hit, b"".join(parts)

    def swap(self, direction, ids):
        req = self.pb2.SwapRequest(direction=direction,
                                   namespace=self.namespace, ids=ids)
        return self.stub.Swap(req, timeout=self.timeout)

    def get(self, block_id):
        req = self.pb2.GetBlockRequest(namespace=self.namespace, id=block_id)
        return self.stub.GetBlock(req, timeout=self.timeout).block

    def unregister(self, block_id):
        req = self.pb2.UnregisterBlockRequest(namespace=self.namespace,
                                              id=block_id)
        return self.stub.UnregisterBlock(req, timeout=self.timeout)

    def status(self):
        return self.stub.Status(self.pb2.StatusRequest(), timeout=self.timeout)


def demo(client, pb2, out=sys.stdout):
    """Register, write, swap out, read back (swap in), check, clean up."""
    data = os.urandom(3 * CHUNK_BYTES + 123)
    client.register("python-demo", len(data), region_type=pb2.KV_CACHE,
                    labels={"model": "qwen3-vl"})
    written = client.write("python-demo", data)
    out.write("wrote %d bytes, tier %s\n" % (
        written.bytes_written, pb2.Tier.Name(written.block.tier)))
    moved = client.swap(pb2.SWAP_OUT, ["python-demo"])
    out.write("swapped out %d bytes\n" % moved.bytes_moved)
    info, hit, back = client.read("python-demo")
    if back != data:
        raise RuntimeError("read back different bytes")
    out.write("read %d bytes back (hit=%s), tier now %s\n" % (
        len(back), hit, pb2.Tier.Name(client.get("python-demo").tier)))
    status = client.status()
    out.write("server %s: %d blocks, RAM tier %d bytes, %d swap-outs\n" % (
        status.version, status.blocks_registered, status.ram.bytes,
        status.efficiency.swap_outs))
    client.unregister("python-demo")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--proto-root",
                        default=os.path.join(here, "..", "..", "protos"))
    parser.add_argument("--generate-stubs", metavar="DIR",
                        help="generate the stubs into DIR and exit")
    parser.add_argument("--stubs", metavar="DIR", default="gen",
                        help="where the generated stubs are")
    parser.add_argument("--target", default="127.0.0.1:50051")
    args = parser.parse_args()
    if args.generate_stubs:
        generate_stubs(args.proto_root, args.generate_stubs)
        return 0
    import grpc
    pb2, pb2_grpc, _, _ = import_stubs(args.stubs)
    with grpc.insecure_channel(args.target) as channel:
        demo(TensorPagerClient(channel, pb2, pb2_grpc), pb2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
