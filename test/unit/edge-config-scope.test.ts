import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ObjectCache } from '../../cloud-hub/cache/object-cache.js';
import { configNamesOf, configsOfAppInUnit } from '../../cloud-hub/configs/config-refs.js';
import { configAudience } from '../../cloud-hub/configs/config-scope.js';
import { appSelectsUnit, configScopeChanged, desiredSet, inScope } from '../../cloud-hub/sessions/scope.js';
import { API_VERSION, type AnyObject, type EdgeApp, type EdgeConfig, type KindName } from '../../shared/api/index.js';
import { edgeApp, instance, nodeUnit, processTemplate } from '../helpers/objects.js';

const config = (name: string): EdgeConfig => ({ apiVersion: API_VERSION, kind: 'EdgeConfig', metadata: { name }, spec: { data: { k: 'v' }, secretData: { s: 'x' } } });

function fakeCache(objects: AnyObject[]): ObjectCache {
  const all = new Map(objects.map((o) => [`${o.kind}/${o.metadata.name}`, o]));
  return {
    get: (kind: KindName, name: string) => all.get(`${kind}/${name}`),
    list: (kind: KindName) => [...all.values()].filter((o) => o.kind === kind),
  } as unknown as ObjectCache;
}

const mounting = (...configs: string[]) => processTemplate({ command: 'x', configMounts: configs.map((config) => ({ config })) });

test('config refs: envFrom and configMounts; an override patch adds a config for its unit only', () => {
  assert.deepEqual(configNamesOf(processTemplate({ command: 'x', envFrom: [{ config: 'b' }], configMounts: [{ config: 'a' }, { config: 'b' }] })), ['a', 'b']);
  const app: EdgeApp = {
    ...edgeApp('web', { units: ['site-a', 'site-b'], template: mounting('base') }),
  };
  app.spec.overrides = [{ units: { names: ['site-b'] }, patches: [{ op: 'add', path: '/processes/0/configMounts/-', value: { config: 'b-only-{{unit}}' } }] }];
  assert.deepEqual(configsOfAppInUnit(app, 'site-a', {}), ['base']);
  assert.deepEqual(configsOfAppInUnit(app, 'site-b', {}), ['b-only-site-b', 'base']);
});

test('scope: a node sees the configs of its unit\'s apps and of its own instances, never those of other units', () => {
  const cache = fakeCache([
    nodeUnit('site-a'), nodeUnit('site-b'),
    edgeApp('app-a', { units: ['site-a'], template: mounting('cfg-a', 'shared') }),
    edgeApp('app-b', { units: ['site-b'], template: mounting('cfg-b', 'shared') }),
    // An instance of an older revision, still using a config the app dropped.
    instance('app-a-site-a-0', { app: 'app-a', node: 'n-a', template: mounting('cfg-old') }),
    config('cfg-a'), config('cfg-b'), config('shared'), config('cfg-old'), config('unused'),
  ]);
  const a = { node: 'n-a', unit: 'site-a' };
  const b = { node: 'n-b', unit: 'site-b' };
  const seen = (scope: typeof a) => desiredSet(scope, cache).filter((o) => o.kind === 'EdgeConfig').map((o) => o.metadata.name).sort();
  assert.deepEqual(seen(a), ['cfg-a', 'cfg-old', 'shared']);
  assert.deepEqual(seen(b), ['cfg-b', 'shared']);
  assert.equal(inScope(config('cfg-b'), a, cache), false);
  assert.equal(inScope(config('unused'), b, cache), false);
  // Configs come before the apps and instances that use them.
  const kinds = desiredSet(a, cache).map((o) => o.kind);
  assert.ok(kinds.lastIndexOf('EdgeConfig') < kinds.indexOf('EdgeApp'));
});

test('scope: an app starting or stopping to use a config, or leaving the unit, changes the node\'s config set', () => {
  const gen = <T extends AnyObject>(o: T, generation: number): T => ({ ...o, metadata: { ...o.metadata, generation } });
  const before = gen(edgeApp('app-a', { units: ['site-a'], template: mounting('one') }), 1);
  const after = gen(edgeApp('app-a', { units: ['site-a'], template: mounting('one', 'two') }), 2);
  const elsewhere = gen(edgeApp('app-a', { units: ['site-b'], template: mounting('one') }), 3);
  const scope = { node: 'n-a', unit: 'site-a' };
  const ev = (type: 'ADDED' | 'MODIFIED' | 'DELETED', object: AnyObject, oldObject?: AnyObject) => ({ type, object, oldObject, revision: 2 });
  const cache = fakeCache([nodeUnit('site-a')]);
  assert.equal(configScopeChanged(ev('MODIFIED', after, before), scope, cache), true);
  assert.equal(configScopeChanged(ev('MODIFIED', { ...after, metadata: { ...after.metadata, labels: { x: 'y' } } }, after), scope, cache), false);
  assert.equal(configScopeChanged(ev('MODIFIED', { ...after, status: { observedGeneration: 2 } } as AnyObject, after), scope, cache), false, 'a status write');
  assert.equal(configScopeChanged(ev('MODIFIED', elsewhere, before), scope, cache), true);
  assert.equal(configScopeChanged(ev('DELETED', before, before), scope, cache), true);
  assert.equal(configScopeChanged(ev('ADDED', edgeApp('plain', { units: ['site-a'] })), scope, cache), false);
  assert.equal(configScopeChanged(ev('ADDED', instance('i', { node: 'n-a', template: mounting('one') })), scope, cache), true);
  assert.equal(configScopeChanged(ev('ADDED', instance('i', { node: 'n-other', template: mounting('one') })), scope, cache), false);
});

test('routing: a config change goes to the units whose apps use it and the nodes whose instances use it', () => {
  const apps = [edgeApp('app-a', { units: ['site-a'], template: mounting('cfg') }), edgeApp('app-b', { units: ['site-b'], template: mounting('other') })];
  const instances = [instance('old-0', { node: 'n-c', unit: 'site-c', template: mounting('cfg') }), instance('pending', { node: '', template: mounting('cfg') })];
  const units = ['site-a', 'site-b', 'site-c'].map((name) => ({ name, labels: {} }));
  const audience = configAudience('cfg', apps, instances, units, (app, unit) => appSelectsUnit(app, unit, nodeUnit(unit)));
  assert.deepEqual([...audience.units], ['site-a']);
  assert.deepEqual([...audience.nodes], ['n-c']);
});
