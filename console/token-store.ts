/**
 * The bearer token of this browser tab. sessionStorage: it survives a reload but not the tab,
 * and is never shared with other tabs or sent anywhere by the browser as a cookie would be.
 * When storage is unavailable (privacy settings), the token lives in memory until a reload.
 */
export interface TokenStore {
  get(): string | undefined;
  set(token: string): void;
  clear(): void;
}

const KEY = "websocketmanager.console.token";

export function createTokenStore(storage: Storage | undefined): TokenStore {
  let memory: string | undefined;
  const attempt = <T>(fn: () => T, fallback: T): T => {
    try {
      return storage ? fn() : fallback;
    } catch {
      return fallback;
    }
  };
  return {
    get() {
      return attempt(() => storage!.getItem(KEY) || undefined, undefined) ?? memory;
    },
    set(token) {
      memory = token;
      attempt(() => storage!.setItem(KEY, token), undefined);
    },
    clear() {
      memory = undefined;
      attempt(() => storage!.removeItem(KEY), undefined);
    },
  };
}
