// Exec over the tunnel (issue 8): params validation, the stdout/stderr output framing, and the
// command lookup that gives a shell's exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOutpostError } from '../../shared/errors.js';
import { encodeExecOutput, ExecChannel, ExecOutputDecoder, MAX_EXEC_FRAME_BYTES, parseExecParams, parseResize } from '../../shared/protocol/exec.js';
import { lookupCommand } from '../../edge-agent/tunnel/command-path.js';

const refused = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (err: unknown) => isOutpostError(err, 'BAD_REQUEST') && pattern.test(err.message));

test('exec params: defaults, and each bad field named', () => {
  assert.deepEqual(parseExecParams({ command: ['sh', '-c', 'true'] }), { command: ['sh', '-c', 'true'], tty: false, stdin: false, cols: 80, rows: 24 });
  assert.deepEqual(parseExecParams({ command: ['top'], tty: true, stdin: true, cols: 120, rows: 40 }), { command: ['top'], tty: true, stdin: true, cols: 120, rows: 40 });
  refused(() => parseExecParams({}), /params.command must be a non-empty array/);
  refused(() => parseExecParams({ command: [] }), /params.command must be a non-empty array/);
  refused(() => parseExecParams({ command: 'ls' }), /params.command must be a non-empty array/);
  refused(() => parseExecParams({ command: ['ls', 3] }), /params.command\[1\] must be a string/);
  refused(() => parseExecParams({ command: ['ls', 'a\0b'] }), /params.command\[1\] contains a NUL byte/);
  refused(() => parseExecParams({ command: [''] }), /params.command\[0\]/);
  refused(() => parseExecParams({ command: ['x'.repeat(70_000)] }), /at most 65536/);
  refused(() => parseExecParams({ command: Array.from({ length: 2000 }, () => 'a') }), /at most 1024/);
  refused(() => parseExecParams({ command: ['ls'], tty: 'yes' }), /params.tty must be true or false/);
  refused(() => parseExecParams({ command: ['ls'], cols: 0 }), /params.cols must be an integer 1-10000/);
  refused(() => parseExecParams({ command: ['ls'], rows: 1.5 }), /params.rows must be an integer/);
  assert.deepEqual(parseResize({ type: 'resize', cols: 100, rows: 30 }), { cols: 100, rows: 30 });
  refused(() => parseResize({ type: 'resize', cols: 100 }), /rows must be an integer/);
});

test('output frames keep stdout and stderr apart through any chunking, and split large writes', () => {
  const big = Buffer.alloc(MAX_EXEC_FRAME_BYTES * 2 + 10, 7);
  const frames = [...encodeExecOutput(ExecChannel.STDOUT, Buffer.from('out1')), ...encodeExecOutput(ExecChannel.STDERR, Buffer.from('err1')), ...encodeExecOutput(ExecChannel.STDOUT, big)];
  assert.equal(frames.length, 5, 'the large write becomes three frames');
  const wire = Buffer.concat(frames);
  for (const chunkSize of [1, 3, 4096, wire.length]) {
    const got: Array<[number, Buffer]> = [];
    const decoder = new ExecOutputDecoder((channel, payload) => got.push([channel, Buffer.from(payload)]));
    for (let i = 0; i < wire.length; i += chunkSize) decoder.push(wire.subarray(i, i + chunkSize));
    assert.equal(decoder.buffered, 0);
    const stdout = Buffer.concat(got.filter(([c]) => c === ExecChannel.STDOUT).map(([, p]) => p));
    const stderr = Buffer.concat(got.filter(([c]) => c === ExecChannel.STDERR).map(([, p]) => p));
    assert.deepEqual(stdout, Buffer.concat([Buffer.from('out1'), big]), `chunks of ${chunkSize}`);
    assert.equal(stderr.toString(), 'err1');
  }
  const cut = new ExecOutputDecoder(() => undefined);
  cut.push(wire.subarray(0, 6));
  assert.ok(cut.buffered > 0, 'an incomplete frame is reported');
  assert.throws(() => new ExecOutputDecoder(() => undefined).push(Buffer.from([9, 0, 0, 0, 1, 65])), /unknown channel 9/);
  assert.throws(() => new ExecOutputDecoder(() => undefined).push(Buffer.from([1, 0xff, 0, 0, 0])), /exceeds/);
});

test('command lookup: PATH, relative to cwd, and the shell\'s 127 / 126', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-exec-'));
  try {
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'tool'), '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(dir, 'bin', 'plain'), 'not executable\n', { mode: 0o644 });
    chmodSync(join(dir, 'bin', 'plain'), 0o644);
    assert.deepEqual(lookupCommand('tool', `/nonexistent:${join(dir, 'bin')}`, '/'), { path: join(dir, 'bin', 'tool') });
    assert.deepEqual(lookupCommand('./bin/tool', '', dir), { path: join(dir, 'bin', 'tool') });
    assert.deepEqual(lookupCommand('nope', join(dir, 'bin'), dir), { code: 127, message: 'command not found: nope' });
    assert.deepEqual(lookupCommand('tool', undefined, dir), { code: 127, message: 'command not found: tool' });
    assert.deepEqual(lookupCommand('bin', dir, dir), { code: 126, message: 'is a directory: bin' });
    if (process.getuid?.() !== 0) assert.deepEqual(lookupCommand('plain', join(dir, 'bin'), dir), { code: 126, message: 'permission denied: plain' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
