// Validate an AsyncAPI document with the official parser: `node tools/validate-asyncapi.mjs FILE`.
// Prints every diagnostic; exits 1 when any is an error (severity 0).
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const file = process.argv[2];
const text = await readFile(file, "utf8");
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text);
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) {
  console.log(`${["error", "warning", "info", "hint"][d.severity] ?? d.severity} ${d.code}: ${d.message} at ${JSON.stringify(d.path)}`);
}
if (!document || errors.length) {
  console.log(`invalid: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`valid: ${document.operations().length} operations, ${document.channels().length} channels`);
