/**
 * Preloaded into the service process by the scale scenario (`node --expose-gc --import
 * bench/lib/gc-preload.ts src/main.ts ...`): on SIGUSR2, run a full garbage collection and print
 * process.memoryUsage() as one line on stderr. It tells retained memory from garbage the
 * service has not collected yet, without touching src/.
 */
process.on("SIGUSR2", () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  process.stderr.write(`[bench-gc] ${JSON.stringify(process.memoryUsage())}\n`);
});
