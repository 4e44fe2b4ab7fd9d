/**
 * Where the service keeps its connections. The service talks to this interface, never to a
 * Map, so that a registry shared by several instances (Dapr state store, owner per connection)
 * can take its place later.
 */

export interface RegistryEntry {
  readonly id: string;
}

export interface ConnectionRegistry<T extends RegistryEntry> {
  /** Adds an entry; false when the id is taken. */
  add(entry: T): boolean;
  get(id: string): T | undefined;
  remove(id: string): boolean;
  /** In insertion order: oldest first. */
  values(): IterableIterator<T>;
  readonly size: number;
}

export function createInMemoryRegistry<T extends RegistryEntry>(): ConnectionRegistry<T> {
  const entries = new Map<string, T>();
  return {
    add(entry) {
      if (entries.has(entry.id)) return false;
      entries.set(entry.id, entry);
      return true;
    },
    get: (id) => entries.get(id),
    remove: (id) => entries.delete(id),
    values: () => entries.values(),
    get size() {
      return entries.size;
    },
  };
}
