/**
 * `grpc.health.v1.Health` over the process's Health: every known service name reports the
 * overall status, as load balancers and Kubernetes gRPC probes expect.
 */
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  type Health as HealthDesc,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import type { Health, HealthReport } from "../server/health.ts";

const statusOf = (report: HealthReport): ServingStatus =>
  report.serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;

export function createHealthService(health: Health): ServiceImpl<typeof HealthDesc> {
  const known = new Set(health.serviceNames);

  return {
    check(request) {
      if (!known.has(request.service)) {
        throw new ConnectError(`unknown service ${JSON.stringify(request.service)}`, Code.NotFound);
      }
      return { status: statusOf(health.evaluate()) };
    },

    list() {
      const status = statusOf(health.evaluate());
      const statuses: Record<string, { status: ServingStatus }> = {};
      for (const name of health.serviceNames) statuses[name] = { status };
      return { statuses };
    },

    watch(request, context) {
      return watchStatus(health, known.has(request.service), context);
    },
  };
}

/**
 * Sends the current status, then each change, and ends after the final NOT_SERVING at
 * shutdown. Only the latest status matters to a watcher, so a slow reader skips intermediate
 * flips instead of queueing them. An unknown service gets SERVICE_UNKNOWN and stays open, as
 * the health protocol asks (a service might become known later; here none ever does).
 */
async function* watchStatus(
  health: Health,
  knownService: boolean,
  context: HandlerContext,
): AsyncGenerator<Pick<HealthCheckResponse, "status">> {
  const initial = health.evaluate();
  let latest = knownService ? statusOf(initial) : ServingStatus.SERVICE_UNKNOWN;
  let ended = initial.shuttingDown;
  let wake: (() => void) | undefined;
  const unwatch = health.watch((report) => {
    if (knownService) latest = statusOf(report);
    if (report.shuttingDown) ended = true;
    wake?.();
  });
  const onAbort = () => wake?.();
  context.signal.addEventListener("abort", onAbort);
  try {
    let sent: ServingStatus | undefined;
    for (;;) {
      // A change goes out even when the call is ending: at shutdown the signal aborts in the
      // same turn as the final NOT_SERVING arrives, and that is the one watchers need most.
      if (latest !== sent) {
        sent = latest;
        yield { status: sent };
        continue;
      }
      if (ended || context.signal.aborted) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    unwatch();
    context.signal.removeEventListener("abort", onAbort);
  }
}
