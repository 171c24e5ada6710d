/**
 * `npm run web:size`: builds the web app afresh and prints how long that
 * took and what a browser downloads (raw and gzip-compressed, per file and
 * in total), against the aim of less than 250 kB of gzipped JavaScript.
 */
import { readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { ensureWebBuild, WEB_DIST } from "./lib/web-build.js";

const AIM_GZIP_JS = 250 * 1024;
const kB = (bytes: number): string => `${(bytes / 1024).toFixed(1)} kB`;

async function files(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await files(full)));
    else found.push(full);
  }
  return found;
}

await rm(WEB_DIST, { recursive: true, force: true });
const build = await ensureWebBuild();
process.stdout.write(`web build: ${build.ms} ms (npm run build -w @meshwork/web, from nothing)\n\n`);
let jsGzip = 0;
const rows: string[] = [];
for (const file of (await files(WEB_DIST)).sort()) {
  if (!/\.(js|css|html)$/.test(file)) continue;
  const bytes = await readFile(file);
  const gzip = gzipSync(bytes, { level: 9 }).length;
  if (file.endsWith(".js")) jsGzip += gzip;
  rows.push(`  ${path.relative(WEB_DIST, file).padEnd(34)} ${kB(bytes.length).padStart(10)} ${kB(gzip).padStart(10)} gzip`);
}
process.stdout.write(`${rows.join("\n")}\n\nJavaScript, gzipped: ${kB(jsGzip)} (aim: under ${kB(AIM_GZIP_JS)}) ${jsGzip < AIM_GZIP_JS ? "within the aim" : "OVER the aim"}\n`);
