import { createMemoryIdentityStore } from "../src/adapters/identity-store.memory.js";
import { identityStoreBehaviour } from "./identity-store.behaviour.js";
import { knexStoreSuite } from "./identity-store.suite.js";

identityStoreBehaviour("memory", async () => createMemoryIdentityStore());
knexStoreSuite("PGlite");
