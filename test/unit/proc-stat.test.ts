import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { checkProcess, hasProcFs, parseProcStat, processGroupMembers, readProcStat } from '../../edge-agent/runtime/proc-stat.js';

// Fields 3..22 of a real line; field 22 (starttime) is 4242.
const TAIL = 'S 1 100 100 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 4242 1000 10 18446744073709551615';

test('parses pid, state, ppid, pgrp and start time (field 22)', () => {
  assert.deepEqual(parseProcStat(`123 (sleep) ${TAIL}\n`), { pid: 123, comm: 'sleep', state: 'S', ppid: 1, pgrp: 100, startTime: 4242 });
});

test('a comm with spaces and parentheses is split after the last ")"', () => {
  const stat = parseProcStat(`77 (my (evil) prog) 9) ${TAIL}`);
  assert.equal(stat?.comm, 'my (evil) prog) 9');
  assert.equal(stat?.startTime, 4242);
  assert.equal(stat?.pgrp, 100);
  // A comm that looks like fields must not shift them.
  assert.equal(parseProcStat(`78 (a) Z 5 6 7) ${TAIL}`)?.state, 'S');
});

test('malformed stat lines give undefined', () => {
  assert.equal(parseProcStat(''), undefined);
  assert.equal(parseProcStat('123 sleep S 1 100'), undefined);
  assert.equal(parseProcStat('123 (sleep) S 1 100 100'), undefined); // truncated before field 22
  assert.equal(parseProcStat(`x (sleep) ${TAIL}`), undefined);
  assert.equal(parseProcStat(`123 (sleep) ${TAIL.replace('4242', 'abc')}`), undefined);
});

test('reads this process from /proc and tells alive, reused and gone apart', { skip: !existsSync('/proc/self/stat') }, () => {
  assert.equal(hasProcFs(), true);
  const self = readProcStat(process.pid);
  assert.ok(self);
  assert.equal(self.pid, process.pid);
  assert.equal(checkProcess(process.pid, self.startTime, true), 'alive');
  assert.equal(checkProcess(process.pid, self.startTime + 1, true), 'reused');
  assert.equal(checkProcess(process.pid, null, true), 'alive');
  assert.equal(checkProcess(2 ** 22 + 12345, null, true), 'gone'); // above Linux's pid_max
  assert.ok(processGroupMembers(self.pgrp).includes(process.pid));
});

test('without /proc, liveness is kill(pid, 0)', () => {
  assert.equal(checkProcess(process.pid, 1, false), 'alive');
  assert.equal(checkProcess(2 ** 22 + 12345, null, false), 'gone');
});
