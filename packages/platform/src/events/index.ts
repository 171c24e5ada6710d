export * from "./event-store.js";
export * from "./projection-reader.js";
