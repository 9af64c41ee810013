import type { Device, DeviceModel, Property, PropertyValue } from '../../shared/api/index.js';
import type { FieldError } from '../../shared/errors.js';
import type { RejectReason } from '../../shared/devices/topics.js';

const DEFAULT_MAX_LENGTH = 1024;

export interface ValueProblem {
  reason: RejectReason;
  message: string;
}

/** Why `value` does not fit `prop` (type, enum, minimum, maximum, maxLength), or undefined. */
export function valueProblem(prop: Property, value: PropertyValue): ValueProblem | undefined {
  const wrong = (expected: string): ValueProblem => ({ reason: 'wrong-type', message: `${prop.name} is ${expected}, got ${JSON.stringify(value).slice(0, 64)}` });
  switch (prop.type) {
    case 'bool':
      return typeof value === 'boolean' ? undefined : wrong('a bool (true or false)');
    case 'string': {
      if (typeof value !== 'string') return wrong('a string');
      const max = prop.maxLength ?? DEFAULT_MAX_LENGTH;
      return value.length > max ? { reason: 'out-of-range', message: `${prop.name} is at most ${max} characters, got ${value.length}` } : undefined;
    }
    case 'enum':
      if (typeof value !== 'string') return wrong(`one of ${(prop.enum ?? []).join(', ')}`);
      return prop.enum?.includes(value) ? undefined : { reason: 'out-of-range', message: `${prop.name} must be one of ${(prop.enum ?? []).join(', ')}, got ${JSON.stringify(value.slice(0, 64))}` };
    case 'int':
    case 'float': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return wrong(prop.type === 'int' ? 'an int' : 'a number');
      if (prop.type === 'int' && !Number.isInteger(value)) return wrong('an int');
      if (prop.minimum !== undefined && value < prop.minimum) return { reason: 'out-of-range', message: `${prop.name} must be >= ${prop.minimum}, got ${value}` };
      if (prop.maximum !== undefined && value > prop.maximum) return { reason: 'out-of-range', message: `${prop.name} must be <= ${prop.maximum}, got ${value}` };
      return undefined;
    }
  }
}

/** The model's property of that name. */
export function propertyOf(model: DeviceModel, name: string): Property | undefined {
  return model.spec.properties.find((p) => p.name === name);
}

/**
 * The desired twin against the model: every key a ReadWrite property of the model, every value
 * of its type and within its limits. Paths are `/spec/desired/<prop>`.
 */
export function desiredProblems(device: Device, model: DeviceModel): FieldError[] {
  const out: FieldError[] = [];
  for (const [name, value] of Object.entries(device.spec.desired ?? {})) {
    const path = `/spec/desired/${name}`;
    const prop = propertyOf(model, name);
    if (!prop) { out.push({ path, message: `model ${model.metadata.name} has no property ${name}` }); continue; }
    if (prop.access !== 'ReadWrite') { out.push({ path, message: `${name} is ReadOnly in model ${model.metadata.name}: the device reports it, the operator cannot set it` }); continue; }
    const problem = valueProblem(prop, value);
    if (problem) out.push({ path, message: problem.message });
  }
  return out;
}

/** Model rules a schema cannot say: unique property names, enum values for enums only, minimum <= maximum. */
export function modelProblems(model: DeviceModel): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  model.spec.properties.forEach((p, i) => {
    const path = `/spec/properties/${i}`;
    if (seen.has(p.name)) out.push({ path: `${path}/name`, message: `property ${p.name} is defined twice` });
    seen.add(p.name);
    if (p.type === 'enum' && !p.enum) out.push({ path: `${path}/enum`, message: 'an enum property needs its values' });
    if (p.type !== 'enum' && p.enum) out.push({ path: `${path}/enum`, message: `enum values apply to enum properties, not ${p.type}` });
    if (p.minimum !== undefined && p.maximum !== undefined && p.minimum > p.maximum) out.push({ path: `${path}/minimum`, message: `minimum ${p.minimum} is above maximum ${p.maximum}` });
  });
  return out;
}
