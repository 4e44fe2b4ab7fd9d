/**
 * Prints the closing line of `npm test`: tests passed and failed across vitest and pytest,
 * plus stages (typecheck, lint, gen check) that failed. Exits 1 when anything failed.
 * Arguments: names of failed stages.
 */
import { existsSync, readFileSync } from "node:fs";

const failedStages = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;

if (existsSync("test-results/vitest.json")) {
  const v = JSON.parse(readFileSync("test-results/vitest.json", "utf8")) as {
    numPassedTests: number;
    numFailedTests: number;
    numPendingTests: number;
    numTodoTests?: number;
  };
  passed += v.numPassedTests;
  failed += v.numFailedTests;
  skipped += v.numPendingTests + (v.numTodoTests ?? 0);
}
if (existsSync("test-results/pytest.xml")) {
  const xml = readFileSync("test-results/pytest.xml", "utf8");
  const suite = /<testsuite\b[^>]*>/.exec(xml)?.[0] ?? "";
  const attr = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(suite)?.[1] ?? 0);
  const total = attr("tests");
  const bad = attr("failures") + attr("errors");
  const skip = attr("skipped");
  passed += total - bad - skip;
  failed += bad;
  skipped += skip;
}
if (failedStages.length > 0) console.log(`failed stages: ${failedStages.join(", ")}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || failedStages.length > 0 ? 1 : 0);
