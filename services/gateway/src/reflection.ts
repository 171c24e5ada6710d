/**
 * gRPC server reflection (grpc.reflection.v1) over Connect, so grpcurl,
 * `buf curl` and any language's tooling can call the gateway without the
 * .proto files. There is no Connect package for it (@grpc/reflection only
 * plugs into grpc-js servers), and the answers come straight from the file
 * descriptors protoc-gen-es embeds in the generated code.
 */
import { createRegistry, toBinary, type DescFile, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import { ServerReflection, type ServerReflectionRequest, type ServerReflectionResponseSchema } from "@meshwork/contracts/grpc/reflection/v1/reflection";

type Answer = NonNullable<MessageInitShape<typeof ServerReflectionResponseSchema>["messageResponse"]>;

/** Reflection over `services` (plus itself): only they are listed and looked up by name. */
export function createReflectionHandlers(services: readonly DescService[]): ServiceImpl<typeof ServerReflection> {
  const listed = [...services, ServerReflection];
  const files = new Map<string, DescFile>();
  const collect = (file: DescFile): void => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    file.dependencies.forEach(collect);
  };
  listed.forEach((service) => {
    collect(service.file);
  });
  const registry = createRegistry(...files.values());
  const routed = new Set(listed.map((service) => service.typeName));

  /** The file and everything it imports, so a client needs no second round trip. */
  const withDependencies = (file: DescFile): Answer => {
    const closure = new Map<string, DescFile>();
    const add = (next: DescFile): void => {
      if (closure.has(next.name)) return;
      closure.set(next.name, next);
      next.dependencies.forEach(add);
    };
    add(file);
    return {
      case: "fileDescriptorResponse",
      value: { fileDescriptorProto: [...closure.values()].map((item) => toBinary(FileDescriptorProtoSchema, item.proto)) },
    };
  };
  const notFound = (what: string): Answer => ({ case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } });

  const fileOfSymbol = (symbol: string): DescFile | undefined => {
    // A method ("pkg.Service.Method") or a field is found through its parent.
    for (const name of [symbol, symbol.slice(0, Math.max(0, symbol.lastIndexOf(".")))]) {
      const desc = registry.get(name);
      if (desc === undefined) continue;
      // Internal services share files with public ones but are not looked up by name.
      if (desc.kind === "service" && !routed.has(desc.typeName)) return undefined;
      return desc.file;
    }
    return undefined;
  };

  const answer = (request: ServerReflectionRequest): Answer => {
    const asked = request.messageRequest;
    switch (asked.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: listed.map((service) => ({ name: service.typeName })) } };
      case "fileByFilename": {
        const file = files.get(asked.value);
        return file ? withDependencies(file) : notFound(`file ${asked.value}`);
      }
      case "fileContainingSymbol": {
        const file = fileOfSymbol(asked.value);
        return file ? withDependencies(file) : notFound(`symbol ${asked.value}`);
      }
      case "allExtensionNumbersOfType":
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: asked.value, extensionNumber: [] } };
      default:
        return notFound("extension");
    }
  };

  return {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        yield { validHost: request.host, originalRequest: request, messageResponse: answer(request) };
      }
    },
  };
}
