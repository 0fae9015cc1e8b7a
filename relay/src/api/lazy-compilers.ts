import ajvCompiler, { type ValidatorFactory } from '@fastify/ajv-compiler';
import serializerCompiler, { type SerializerFactory } from '@fastify/fast-json-stringify-compiler';

/*
 * Fastify compiles every route's request validators (ajv) and response serializers
 * (fast-json-stringify) while the server gets ready: for the relay's routes that was ≈ 40 ms of
 * CPU in a ≈ 550 ms start (CPU profiles of a start, 2026-12-03), paid on every start for routes a
 * relay may never serve. These factories wrap Fastify's own compilers (the same packages, options
 * and shared schemas, so validation and its error messages are unchanged) and compile each schema
 * on its first use instead. A schema that does not compile would then fail its first request
 * rather than the start, so `compileAll` compiles every pending one (the API tests call it).
 */

type Compile<Output> = (definition: unknown) => Output;
type Factory<Output> = (...serverOptions: unknown[]) => Compile<Output>;

interface Validator {
  (data: unknown): unknown;
  errors?: unknown;
}
type Serializer = (data: unknown) => string;

export interface LazyCompilers {
  buildValidator: ValidatorFactory;
  buildSerializer: SerializerFactory;
  /** Compiles every schema not compiled yet; returns how many there were. Throws what the compiler throws. */
  compileAll(): number;
}

/** Fastify's ajv and fast-json-stringify compilers, each schema compiled on first use. */
export function lazyCompilers(): LazyCompilers {
  const pending = new Set<() => unknown>();
  const defer = <Output>(compile: Compile<Output>, definition: unknown): (() => Output) => {
    let compiled: Output | undefined;
    const force = (): Output => {
      if (compiled === undefined) {
        compiled = compile(definition);
        pending.delete(force);
      }
      return compiled;
    };
    pending.add(force);
    return force;
  };
  const buildAjv = ajvCompiler() as unknown as (...serverOptions: unknown[]) => Compile<Validator>;
  const buildStringify = serializerCompiler() as unknown as (...serverOptions: unknown[]) => Compile<Serializer>;
  const buildValidator: Factory<Validator> = (...serverOptions) => {
    const compile = buildAjv(...serverOptions);
    return (definition) => {
      const validator = defer(compile, definition);
      const lazy: Validator = (data) => {
        const validate = validator();
        const result = validate(data);
        // Fastify reads a failed validation's errors from the function it was given.
        lazy.errors = validate.errors;
        return result;
      };
      return lazy;
    };
  };
  const buildSerializer: Factory<Serializer> = (...serverOptions) => {
    const compile = buildStringify(...serverOptions);
    return (definition) => {
      const serializer = defer(compile, definition);
      return (data) => serializer()(data);
    };
  };
  return {
    // Fastify's types describe ajv's own function (with its schema and source); Fastify only calls it and reads `errors`.
    buildValidator: buildValidator as unknown as ValidatorFactory,
    buildSerializer: buildSerializer as unknown as SerializerFactory,
    compileAll: () => {
      const count = pending.size;
      for (const force of [...pending]) force();
      return count;
    },
  };
}
