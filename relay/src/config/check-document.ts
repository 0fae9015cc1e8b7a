import type { TSchema } from '@sinclair/typebox';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { ConfigError, describeValue } from './config-error.js';
import { ConfigDocument } from './config-schema.js';

/*
 * Checks a parsed config document against the schema and fills in its defaults. The first problem
 * becomes a ConfigError that names the key as a user wrote it (`virtualMachines[0].serial.protocol`)
 * and states the schema's `errorMessage` with the value it got.
 */

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A key as messages show it: a plain word as it is, anything else (empty, dotted, odd) quoted. */
function showKey(parent: string, key: string): string {
  const shown = /^[A-Za-z0-9_]+$/.test(key) ? key : JSON.stringify(key.slice(0, 40));
  return parent ? `${parent}.${shown}` : shown;
}

/** The schema of `key` inside `schema`: an object's property, or the first object variant of a union that has it. */
function propertyOf(schema: TSchema | undefined, key: string): TSchema | undefined {
  if (!schema) return undefined;
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as TSchema[]).map((variant) => propertyOf(variant, key)).find(Boolean);
  return isObject(schema.properties) && Object.hasOwn(schema.properties, key) ? (schema.properties[key] as TSchema) : undefined;
}

function knownKeys(schema: TSchema | undefined): string {
  return Object.keys(isObject(schema?.properties) ? schema.properties : {}).join(', ');
}

/**
 * Strings trimmed; an empty YAML key (`api:`, `- libvirt:`) read as absent, or as an empty mapping where a
 * mapping belongs; `__proto__` refused here, because copying it (as defaults do) would set a prototype instead.
 */
function normalize(schema: TSchema | undefined, value: unknown, key: string): unknown {
  if (typeof value === 'string') return value.trim();
  if (Array.isArray(value)) return value.map((item, index) => normalize(schema?.items as TSchema | undefined, item, `${key}[${index}]`));
  if (!isObject(value)) return value;
  // TypeBox's Value.Default would turn a map given for a list into a list carrying its keys (a key "constructor" then breaks .map).
  if (schema?.type === 'array') throw new ConfigError(key, `must be a list (- item per line in YAML), not a map`);
  const result: Json = {};
  for (const [name, item] of Object.entries(value)) {
    if (name === '__proto__') throw new ConfigError(showKey(key, name), `unknown key; expected one of ${knownKeys(schema)}`);
    const property = propertyOf(schema, name);
    if (item === null) {
      if (property?.type === 'object') result[name] = {};
      continue;
    }
    result[name] = normalize(property, item, showKey(key, name));
  }
  return result;
}

function kindMatches(schema: TSchema, value: unknown): boolean {
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as TSchema[]).some((variant) => kindMatches(variant, value));
  switch (schema.type) {
    case 'object':
      return isObject(value);
    case 'array':
      return Array.isArray(value);
    case 'integer':
      return typeof value === 'number';
    default:
      return typeof value === schema.type;
  }
}

/** The one variant of a union that a value was meant as (by its kind, then by the keys it has), if there is one. */
function meantVariant(variants: TSchema[], value: unknown): number | undefined {
  let candidates = variants.map((variant, index) => ({ variant, index })).filter(({ variant }) => kindMatches(variant, value));
  if (candidates.length > 1 && isObject(value)) {
    candidates = candidates.filter(({ variant }) => ((variant.required ?? []) as string[]).every((name) => Object.hasOwn(value, name)));
  }
  return candidates.length === 1 ? candidates[0]!.index : undefined;
}

/** A JSON pointer into `document` as the key path a user reads: `/virtualMachines/0/name` → `virtualMachines[0].name`. */
function keyOf(pointer: string, document: unknown): string {
  let key = '';
  let at: unknown = document;
  for (const segment of pointer.split('/').slice(1).map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))) {
    key = Array.isArray(at) ? `${key}[${segment}]` : showKey(key, segment);
    at = isObject(at) || Array.isArray(at) ? (at as Json)[segment] : undefined;
  }
  return key || '(top level)';
}

function toConfigError(first: ValueError, document: unknown): ConfigError {
  let error = first;
  // A union's error says only "none of these"; follow the variant the value was meant as to its real problem.
  while (error.type === ValueErrorType.Union) {
    const variant = meantVariant(error.schema.anyOf as TSchema[], error.value);
    const inner = variant === undefined ? undefined : error.errors[variant]?.First();
    if (!inner) break;
    error = inner;
  }
  const key = keyOf(error.path, document);
  if (error.type === ValueErrorType.ObjectAdditionalProperties) return new ConfigError(key, `unknown key; expected one of ${knownKeys(error.schema)}`);
  if (error.type === ValueErrorType.ObjectRequiredProperty) return new ConfigError(key, 'is required');
  const problem = typeof error.schema.errorMessage === 'string' ? error.schema.errorMessage : error.message;
  return new ConfigError(key, `${problem}, got ${describeValue(error.value)}`);
}

/** The document with every default filled in, or the first problem as a ConfigError. */
export function checkDocument(document: unknown): ConfigDocument {
  const value = Value.Default(ConfigDocument, normalize(ConfigDocument, document, ''));
  const first = Value.Errors(ConfigDocument, value).First();
  if (first) throw toConfigError(first, value);
  return value as ConfigDocument;
}
