import { toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { Server, ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import type { PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { file_grpc_reflection_v1_reflection } from "@meshwork/contracts/grpc/reflection/v1/reflection";
import { file_health_v1_health } from "@meshwork/contracts/health/v1/health";
import type { AnyService } from "./service-types.js";

/**
 * Server reflection through @grpc/reflection. That library reads file
 * descriptors from a proto-loader package definition; our services are
 * described by protoc-gen-es, whose generated code embeds each file's
 * descriptor. So we hand it those descriptors, with every file they import, in
 * the one shape it reads (`{ fileDescriptorProtos }` values). Health and
 * reflection are described the same way, from code generated in place from
 * the protos that grpc-health-check and @grpc/reflection ship.
 */
export function createReflection(services: readonly AnyService[]): ReflectionService {
  const files = new Map<string, DescFile>();
  const collect = (file: DescFile): void => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    file.dependencies.forEach(collect);
  };
  [file_health_v1_health, file_grpc_reflection_v1_reflection, ...services.map((service) => service.file)].forEach(collect);
  const fileDescriptorProtos = [...files.values()].map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
  const definition = { descriptors: { fileDescriptorProtos } } as unknown as PackageDefinition;
  return new ReflectionService(definition);
}

type AddService = Pick<Server, "addService">;
type Registered = { readonly definition: ServiceDefinition; readonly implementation: UntypedServiceImplementation };

/** What a ReflectionService adds to a server (v1 and v1alpha), captured instead of added. */
function registrations(reflection: ReflectionService): Registered[] {
  const added: Registered[] = [];
  reflection.addToServer({ addService: (definition, implementation) => void added.push({ definition, implementation }) } as AddService);
  return added;
}

/** The reflection services' definitions (parsed from the library's .proto files): the same for every server, so parsed once a process. */
let definitions: readonly ServiceDefinition[] | undefined;

/**
 * Adds server reflection for `services` to `server`, built on its first call.
 * @grpc/reflection parses its two .proto files for each server it is added to
 * and indexes and re-encodes every descriptor up front; `npm start` has six
 * servers, and reflection is asked for by a person with buf curl now and then.
 * Here the definitions are parsed once a process (from a reflection service
 * with no files) and each server's index is built when reflection is first
 * called on it. Only the library's public API is used (addToServer takes any
 * `{ addService }`), so requests are answered by its own code.
 */
export function addLazyReflection(server: AddService, services: readonly AnyService[]): void {
  definitions ??= registrations(new ReflectionService({} as PackageDefinition)).map((registered) => registered.definition);
  let handlers: Map<string, UntypedServiceImplementation> | undefined;
  const handlerFor = (definition: ServiceDefinition): UntypedServiceImplementation => {
    handlers ??= new Map(registrations(createReflection(services)).map(({ definition, implementation }) => [pathsOf(definition), implementation]));
    const implementation = handlers.get(pathsOf(definition));
    if (!implementation) throw new Error(`reflection: no handler for ${pathsOf(definition)}`);
    return implementation;
  };
  for (const definition of definitions) {
    const implementation: UntypedServiceImplementation = {};
    for (const name of Object.keys(definition)) {
      implementation[name] = (call: unknown, ...rest: unknown[]) => (handlerFor(definition)[name] as (...args: unknown[]) => unknown)(call, ...rest);
    }
    server.addService(definition, implementation);
  }
}

/** A service definition's identity: the paths of its methods. */
const pathsOf = (definition: ServiceDefinition): string =>
  Object.values(definition)
    .map((method) => method.path)
    .join(",");
