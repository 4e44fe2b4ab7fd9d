/**
 * The composition root: the only place that reads argv and the environment, installs signal
 * handlers and exits the process.
 */
import { ConfigError, parseConfig } from "./config.ts";

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`websocketmanager: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  if (parsed.kind === "help") {
    process.stdout.write(parsed.text);
    return;
  }
  const config = parsed.config;
  // Loaded after the configuration is known good: --help and bad flags answer at once.
  const { createApp } = await import("./app.ts");
  let app;
  try {
    app = createApp(config);
  } catch (err) {
    // E.g. an unreadable TLS or CA file: a configuration problem, not a crash.
    process.stderr.write(`websocketmanager: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const { logger } = app;

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn("second signal, exiting now", { signal });
      process.exit(1);
    }
    stopping = true;
    logger.info("shutting down", { signal });
    app.close().then(
      () => {
        logger.info("stopped");
        process.exit(0);
      },
      (err: unknown) => {
        logger.error("shutdown failed", { err });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // Malformed input must never take the process down with everyone's connections; a bug that
  // escapes every handler is logged, and the process keeps serving.
  process.on("uncaughtException", (err) => logger.error("uncaught exception", { err, stack: err.stack }));
  process.on("unhandledRejection", (reason) => logger.error("unhandled rejection", { err: reason }));

  try {
    const { port, host } = await app.listen();
    logger.info("listening", {
      port,
      host,
      tls: config.tlsCertFile !== "",
      publisher: app.publisher.name,
      auth: config.authToken !== "",
    });
  } catch (err) {
    process.stderr.write(`websocketmanager: cannot listen on ${config.host}:${config.port}: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

await main();
