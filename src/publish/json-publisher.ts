/**
 * An optional capability of a Publisher: taking events already serialized as CloudEvents JSON
 * (structured mode). A broker client that sends JSON anyway (the Dapr publisher) skips the
 * object round trip: a JSON frame becomes its envelope by string concatenation
 * (messageCloudEventJson) instead of JSON.parse into an object and JSON.stringify back out.
 */
import type { PublishOptions, Publisher } from "./publisher.ts";

export interface JsonPublisher extends Publisher {
  /**
   * As `publish`, each event given as the JSON text of a CloudEvent object. The text is sent
   * as is: it must be one valid JSON object.
   */
  publishJson(topic: string, events: readonly string[], signal?: AbortSignal, options?: PublishOptions): Promise<void>;
}

export function isJsonPublisher(publisher: Publisher): publisher is JsonPublisher {
  return typeof (publisher as Partial<JsonPublisher>).publishJson === "function";
}
