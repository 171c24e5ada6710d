import assert from "node:assert/strict";
import type { ServiceDefinition } from "@grpc/grpc-js";
import { test } from "vitest";
import { addLazyReflection } from "./reflection.js";

test("every server gets reflection v1 and v1alpha, from definitions parsed once a process", () => {
  const added: ServiceDefinition[] = [];
  const server = { addService: (definition: ServiceDefinition) => void added.push(definition) };
  addLazyReflection(server, []);
  addLazyReflection(server, []);
  const paths = added.map((definition) => definition.ServerReflectionInfo?.path);
  assert.deepEqual(paths, [
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
  ]);
  assert.equal(added[0], added[2], "the second server reuses the first one's parsed definition");
});
