// Copies the browser builds of the dashboard's libraries from node_modules/
// into static/vendor/<library>/, together with their licence files.
// Usage (from the repository root): npm ci && npm run vendor
import { cpSync, mkdirSync, rmSync, existsSync, readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const vendorDir = dirname(fileURLToPath(import.meta.url));
const modules = join(vendorDir, "..", "..", "node_modules");

// library folder -> list of [source inside node_modules, destination inside the folder]
const plan = {
  "socket.io-client": [
    ["socket.io-client/dist/socket.io.min.js", "socket.io.min.js"],
    ["socket.io-client/LICENSE", "LICENSE"],
    // the browser bundle inlines these packages; keep their notices too
    ["engine.io-client/LICENSE", "LICENSE.engine.io-client"],
    ["engine.io-parser/LICENSE", "LICENSE.engine.io-parser"],
    ["socket.io-parser/LICENSE", "LICENSE.socket.io-parser"],
    ["@socket.io/component-emitter/LICENSE", "LICENSE.component-emitter"],
  ],
  leaflet: [
    ["leaflet/dist/leaflet.js", "leaflet.js"],
    ["leaflet/dist/leaflet.css", "leaflet.css"],
    ["leaflet/dist/images", "images"],
    ["leaflet/LICENSE", "LICENSE"],
  ],
  "chart.js": [
    ["chart.js/dist/chart.umd.js", "chart.umd.js"],
    ["chart.js/LICENSE.md", "LICENSE.md"],
    ["@kurkle/color/LICENSE.md", "LICENSE.kurkle-color.md"],
  ],
};

for (const [lib, files] of Object.entries(plan)) {
  const out = join(vendorDir, lib);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const pkg = JSON.parse(readFileSync(join(modules, lib, "package.json"), "utf8"));
  for (const [src, dest] of files) {
    const from = join(modules, src);
    if (!existsSync(from)) {
      console.warn(`missing ${src} (skipped)`);
      continue;
    }
    cpSync(from, join(out, dest), { recursive: true });
  }
  console.log(`${lib} ${pkg.version} -> static/vendor/${lib}/`);
}
