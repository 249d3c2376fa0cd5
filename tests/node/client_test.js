// A Node.js client against a real tensorpagerd: @grpc/grpc-js with the
// service loaded at run time from protos/ by @grpc/proto-loader (no code
// generation). The test starts its own server on a free loopback port
// (port 0 + ready file) with a temporary data dir, and stops it at the end.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const sourceDir = process.env.TP_SOURCE_DIR || path.join(__dirname, '..', '..');
const binaryDir = process.env.TP_BINARY_DIR || path.join(sourceDir, 'build');
const protoRoot = path.join(sourceDir, 'protos');
const CHUNK = 1 << 20;  // WriteBlock messages carry at most 1 MiB

// keepCase: the proto's field names (size_bytes, namespace); uint64 as
// Number is exact below 2^53 bytes.
const loaderOptions = {
  keepCase: true, longs: Number, enums: String, defaults: true,
  includeDirs: [protoRoot],
};
const tp = grpc.loadPackageDefinition(protoLoader.loadSync(
    'tensorpager/v1/tensorpager.proto', loaderOptions)).tensorpager.v1;
const health = grpc.loadPackageDefinition(protoLoader.loadSync(
    'grpc/health/v1/health.proto', loaderOptions)).grpc.health.v1;

let workdir;
let server;
let client;
let target;

function startServer() {
  const binary = path.join(binaryDir, 'server', 'tensorpagerd');
  const readyFile = path.join(workdir, 'ready');
  const log = fs.openSync(path.join(workdir, 'server.log'), 'w');
  const proc = spawn(binary, [
    `--data_dir=${path.join(workdir, 'data')}`,
    '--grpc_address=127.0.0.1:0', '--metrics_address=127.0.0.1:0',
    `--ready_file=${readyFile}`, '--ram_budget=64MiB',
  ], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 60000;
    const poll = () => {
      if (proc.exitCode !== null) {
        reject(new Error('tensorpagerd exited during startup:\n' +
            fs.readFileSync(path.join(workdir, 'server.log'), 'utf8')));
        return;
      }
      if (fs.existsSync(readyFile)) {
        const m = /^grpc_port=(\d+)$/m.exec(fs.readFileSync(readyFile, 'utf8'));
        if (m) {
          resolve({ proc, port: Number(m[1]) });
          return;
        }
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        reject(new Error('tensorpagerd not ready in 60 s'));
        return;
      }
      setTimeout(poll, 20);
    };
    poll();
  });
}

function stopServer(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      resolve(proc.exitCode);
      return;
    }
    const killer = setTimeout(() => proc.kill('SIGKILL'), 30000);
    proc.once('exit', (code) => {
      clearTimeout(killer);
      resolve(code);
    });
    proc.kill('SIGTERM');
  });
}

const deadline = () => new Date(Date.now() + 30000);

function unary(method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: deadline() },
        (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}

function writeBlock(id, data) {
  return new Promise((resolve, reject) => {
    const call = client.WriteBlock({ deadline: deadline() },
        (err, resp) => (err ? reject(err) : resolve(resp)));
    for (let offset = 0; offset < data.length; offset += CHUNK) {
      const msg = { data: data.subarray(offset, offset + CHUNK) };
      if (offset === 0) Object.assign(msg, { id, total_bytes: data.length });
      call.write(msg);
    }
    call.end();
  });
}

function readBlock(id, offset = 0, length = 0) {
  return new Promise((resolve, reject) => {
    const call = client.Access({ id, offset, length }, { deadline: deadline() });
    const parts = [];
    let first = null;
    call.on('data', (resp) => {
      if (first === null) first = resp;
      parts.push(resp.data);
    });
    call.on('error', reject);
    call.on('end', () => resolve({
      block: first.block, hit: first.hit, data: Buffer.concat(parts),
    }));
  });
}

before(async () => {
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensorpager-node-'));
  server = await startServer();
  target = `127.0.0.1:${server.port}`;
  client = new tp.TensorPager(target, grpc.credentials.createInsecure());
  await new Promise((resolve, reject) =>
    client.waitForReady(deadline(), (err) => (err ? reject(err) : resolve())));
});

after(async () => {
  if (client) client.close();
  const code = server ? await stopServer(server.proc) : 0;
  fs.rmSync(workdir, { recursive: true, force: true });
  assert.equal(code, 0, 'tensorpagerd exits cleanly on SIGTERM');
});

test('register, write, swap out, read back and Status', async () => {
  const data = crypto.randomBytes(2 * CHUNK + 17);
  const reg = await unary('RegisterBlock', {
    id: 'node-block', size_bytes: data.length, region_type: 'IMAGE_FEATURES',
    labels: { client: 'node' },
  });
  assert.equal(reg.block.tier, 'TIER_EMPTY');

  const written = await writeBlock('node-block', data);
  assert.equal(written.bytes_written, data.length);
  assert.equal(written.block.tier, 'TIER_RAM');

  const swapped = await unary('Swap', { direction: 'SWAP_OUT', ids: ['node-block'] });
  assert.equal(swapped.blocks_moved, 1);
  assert.equal(swapped.bytes_moved, data.length);
  assert.equal((await unary('GetBlock', { id: 'node-block' })).block.tier, 'TIER_DISK');

  const back = await readBlock('node-block');
  assert.equal(back.hit, false, 'served by a swap-in');
  assert.ok(back.data.equals(data), 'same bytes back');
  assert.equal(back.block.labels.client, 'node');

  const range = await readBlock('node-block', 1000, 24);
  assert.equal(range.hit, true);
  assert.ok(range.data.equals(data.subarray(1000, 1024)));

  const status = await unary('Status', {});
  assert.ok(status.blocks_registered >= 1);
  assert.ok(status.efficiency.swap_outs >= 1);
  assert.ok(status.efficiency.swap_ins >= 1);

  await unary('UnregisterBlock', { id: 'node-block' });
});

test('errors are precise gRPC status codes', async () => {
  await assert.rejects(unary('GetBlock', { id: 'node-absent' }),
      (err) => err.code === grpc.status.NOT_FOUND && err.details.length > 0);
  await assert.rejects(unary('RegisterBlock', { id: 'node-zero', size_bytes: 0 }),
      (err) => err.code === grpc.status.INVALID_ARGUMENT);
  await unary('RegisterBlock', { id: 'node-pinned', size_bytes: 8, pinned: true });
  await writeBlock('node-pinned', Buffer.alloc(8, 1));
  await assert.rejects(unary('Swap', { direction: 'SWAP_OUT', ids: ['node-pinned'] }),
      (err) => err.code === grpc.status.FAILED_PRECONDITION);
  await unary('UnregisterBlock', { id: 'node-pinned' });
});

test('standard health service reports SERVING', async () => {
  const stub = new health.Health(target, grpc.credentials.createInsecure());
  const resp = await new Promise((resolve, reject) =>
    stub.Check({ service: '' }, { deadline: deadline() },
        (err, r) => (err ? reject(err) : resolve(r))));
  stub.close();
  assert.equal(resp.status, 'SERVING');
});
