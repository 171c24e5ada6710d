import { salesViewSuite } from "./sales-view.suite.js";

// On a PGlite of its own per test: twice in CI (of five runs) this suite saw an event
// counted twice or a batch cut short while sharing the unit project's one embedded
// PGlite with other test files. Not explained yet (see issue 15's note); the shared
// embedded mode of `npm start` needs the same investigation.
salesViewSuite("PGlite", { privateEmbedded: true });
