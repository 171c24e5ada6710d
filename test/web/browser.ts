/**
 * Debian's Chromium (/usr/bin/chromium, installed by .ci/run) driven by
 * playwright-core: `npx playwright install` cannot download browsers here.
 * `chromium.launch` starts it with a fresh, empty profile directory of its own.
 */
import { chromium, type Browser, type BrowserContext } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Without the background-networking flags Chromium keeps dialling Google's hosts, which this closed network refuses. */
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export interface RunningBrowser {
  readonly browser: Browser;
  /** A fresh context (its own sessionStorage and cookies), as a new visitor. */
  newVisitor(): Promise<BrowserContext>;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<RunningBrowser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  return {
    browser,
    newVisitor: () => browser.newContext({ viewport: { width: 1100, height: 900 } }),
    close: () => browser.close(),
  };
}
