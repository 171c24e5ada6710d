import { createMemoryPaymentStore } from "../src/adapters/payment-store.memory.js";
import { paymentStoreBehaviour } from "./payment-store.behaviour.js";
import { knexStoreSuite } from "./payment-store.suite.js";

paymentStoreBehaviour("memory", async () => createMemoryPaymentStore());
knexStoreSuite("PGlite");
