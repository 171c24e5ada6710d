export * from "./event-store.js";
export * from "./projection-reader.js";
export * from "./projection-lock.js";
export * from "./projection-loop.js";
