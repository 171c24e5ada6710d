import { toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
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
