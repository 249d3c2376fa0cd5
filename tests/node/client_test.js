// A Node.js client against a real tensorpagerd: @grpc/grpc-js with the
// service loaded at run time from protos/ by @grpc/proto-loader (no code
// generation). The test starts its own server on a free loopback port
// (port 0 + ready file) with a temporary data dir, and stops it at the end.
// The TLS test starts a second server of its own, with a tenants file and
// openssl-made certificates.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
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

// tensorpagerd with its files in `dir` (workdir by default) and `extraFlags`.
function startServer(dir = workdir, extraFlags = []) {
  const binary = path.join(binaryDir, 'server', 'tensorpagerd');
  const readyFile = path.join(dir, 'ready');
  const logFile = path.join(dir, 'server.log');
  const log = fs.openSync(logFile, 'w');
  const proc = spawn(binary, [
    `--data_dir=${path.join(dir, 'data')}`,
    '--grpc_address=127.0.0.1:0', '--metrics_address=127.0.0.1:0',
    `--ready_file=${readyFile}`, '--ram_budget=64MiB', ...extraFlags,
  ], { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 60000;
    const poll = () => {
      if (proc.exitCode !== null) {
        reject(new Error('tensorpagerd exited during startup:\n' +
            fs.readFileSync(logFile, 'utf8')));
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

function unary(method, request, stub = client) {
  return new Promise((resolve, reject) => {
    stub[method](request, { deadline: deadline() },
        (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}

function writeBlock(id, data, stub = client, namespace = '') {
  return new Promise((resolve, reject) => {
    const call = stub.WriteBlock({ deadline: deadline() },
        (err, resp) => (err ? reject(err) : resolve(resp)));
    for (let offset = 0; offset < data.length; offset += CHUNK) {
      const msg = { data: data.subarray(offset, offset + CHUNK) };
      if (offset === 0) Object.assign(msg, { namespace, id, total_bytes: data.length });
      call.write(msg);
    }
    call.end();
  });
}

function readBlock(id, offset = 0, length = 0, stub = client, namespace = '') {
  return new Promise((resolve, reject) => {
    const call = stub.Access({ namespace, id, offset, length }, { deadline: deadline() });
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

// ---- Tenants and TLS: a second server of this test's own ----

function opensslMissing() {
  const r = spawnSync('openssl', ['version'], { stdio: 'ignore' });
  return r.error || r.status !== 0 ?
    'the openssl command is missing (apt-get install openssl); it makes ' +
    "this test's certificates" : false;
}

function openssl(dir, args) {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`openssl ${args.join(' ')} failed: ` +
        (r.error ? r.error.message : r.stderr));
  }
}

// ca.crt/.key, and server.crt/.key signed by it for 127.0.0.1 and localhost.
function makeCerts(dir) {
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout',
    'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=tensorpager-node-ca']);
  const cert = (name, san) => {
    fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout',
      `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt',
      '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`,
      '-days', '2', '-extfile', `${name}.ext`]);
  };
  cert('server', 'IP:127.0.0.1,DNS:localhost');
}

const sha256 = (text) => crypto.createHash('sha256').update(text).digest('hex');

test('TLS with a bearer token (call credentials)', { skip: opensslMissing() },
    async (t) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensorpager-node-tls-'));
      let tlsServer = null;
      const stubs = [];
      t.after(async () => {
        for (const s of stubs) s.close();
        const code = tlsServer ? await stopServer(tlsServer.proc) : 0;
        fs.rmSync(dir, { recursive: true, force: true });
        assert.equal(code, 0, 'the TLS tensorpagerd exits cleanly on SIGTERM');
      });

      makeCerts(dir);
      const token = `tok-node-${crypto.randomBytes(16).toString('hex')}`;
      const tenantsFile = path.join(dir, 'tenants.yaml');
      fs.writeFileSync(tenantsFile, [
        'tenants:',
        '  - name: a',
        '    role: client',
        '    namespaces: [a, "a/*"]',
        `    tokens: ["sha256:${sha256(token)}"]`,
        '  - name: root',
        '    role: admin',
        '    namespaces: ["*"]',
        `    tokens: ["sha256:${sha256(`admin-${token}`)}"]`,
        '',
      ].join('\n'));
      tlsServer = await startServer(dir, [
        `--tenants_file=${tenantsFile}`,
        `--tls_cert_file=${path.join(dir, 'server.crt')}`,
        `--tls_key_file=${path.join(dir, 'server.key')}`,
      ]);
      const tlsTarget = `127.0.0.1:${tlsServer.port}`;
      const ca = fs.readFileSync(path.join(dir, 'ca.crt'));
      const bearer = grpc.credentials.createFromMetadataGenerator(
          (_params, callback) => {
            const md = new grpc.Metadata();
            md.add('authorization', `Bearer ${token}`);
            callback(null, md);
          });
      // The certificate's DNS name as the TLS server name (node warns about
      // an IP address there); its IP SAN covers the connection itself.
      const options = { 'grpc.ssl_target_name_override': 'localhost' };
      const authed = new tp.TensorPager(tlsTarget,
          grpc.credentials.combineChannelCredentials(
              grpc.credentials.createSsl(ca), bearer), options);
      const anonymous = new tp.TensorPager(tlsTarget,
          grpc.credentials.createSsl(ca), options);
      stubs.push(authed, anonymous);
      await new Promise((resolve, reject) =>
        authed.waitForReady(deadline(), (err) => (err ? reject(err) : resolve())));

      const data = crypto.randomBytes(CHUNK + 5);
      const reg = await unary('RegisterBlock',
          { namespace: 'a', id: 'node-tls', size_bytes: data.length }, authed);
      assert.equal(reg.block.tier, 'TIER_EMPTY');
      const written = await writeBlock('node-tls', data, authed, 'a');
      assert.equal(written.bytes_written, data.length);
      const block = (await unary('GetBlock', { namespace: 'a', id: 'node-tls' }, authed)).block;
      assert.equal(block.size_bytes, data.length);
      assert.equal(block.tier, 'TIER_RAM');
      const back = await readBlock('node-tls', 0, 0, authed, 'a');
      assert.ok(back.data.equals(data), 'same bytes back over TLS');
      assert.equal((await unary('Status', {}, authed)).tenant, 'a');

      // The same calls without the token: UNAUTHENTICATED (16), saying what
      // to send.
      const isUnauthenticated = (err) =>
        err.code === grpc.status.UNAUTHENTICATED && err.code === 16 &&
        /Bearer/.test(err.details);
      await assert.rejects(unary('GetBlock', { namespace: 'a', id: 'node-tls' }, anonymous),
          isUnauthenticated);
      await assert.rejects(unary('RegisterBlock',
          { namespace: 'a', id: 'node-tls-2', size_bytes: 8 }, anonymous), isUnauthenticated);
      await assert.rejects(unary('Status', {}, anonymous), isUnauthenticated);

      await unary('UnregisterBlock', { namespace: 'a', id: 'node-tls' }, authed);
    });
