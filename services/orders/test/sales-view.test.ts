import { salesViewSuite } from "./sales-view.suite.js";

salesViewSuite("PGlite");
