import type { Device, DeviceModel } from '../../shared/api/index.js';
import { isOutpostError } from '../../shared/errors.js';
import type { Store } from '../store/store.js';
import { desiredProblems } from './property-check.js';

/** Warning prefix the hub owns in Device status.message (other messages are left alone). */
const PREFIX = 'model ';

/**
 * The warning a device's status shows about its model: missing (models and devices may be applied
 * in any order, so the device is accepted and its desired values are checked once the model
 * exists), or desired values the model refuses (a model changed after the device was applied).
 */
export function modelWarning(device: Device, model: DeviceModel | undefined): string | undefined {
  if (!model) return `${PREFIX}${device.spec.model} not found: desired values are not checked until it exists`;
  const problems = desiredProblems(device, model);
  if (problems.length === 0) return undefined;
  return `${PREFIX}${model.metadata.name} refuses the desired values: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`.slice(0, 2048);
}

/**
 * Sets or clears the model warning in a device's status; returns the device as stored. Written
 * with the resourceVersion as precondition (retried), so a concurrent report is never lost.
 */
export async function syncModelWarning(store: Store, name: string): Promise<Device | undefined> {
  for (let attempt = 1; ; attempt++) {
    const device = (await store.get('Device', name)) as Device | undefined;
    if (!device) return undefined;
    const model = (await store.get('DeviceModel', device.spec.model)) as DeviceModel | undefined;
    const warning = modelWarning(device, model);
    const current = device.status?.message;
    if (warning === current || (warning === undefined && !(current?.startsWith(PREFIX) ?? false))) return device;
    const { message: _m, ...rest } = device.status ?? {};
    try {
      const status = warning === undefined ? rest : { ...rest, message: warning };
      return (await store.updateStatus('Device', name, status, { resourceVersion: device.metadata.resourceVersion ?? '' })) as Device;
    } catch (err) {
      if (isOutpostError(err, 'NOT_FOUND')) return undefined;
      if (!isOutpostError(err, 'CONFLICT') || attempt >= 5) throw err;
    }
  }
}
