/**
 * The dialog that asks for the service's bearer token. It opens when a call is refused with
 * UNAUTHENTICATED (or from the header's Token button); the token goes to the token store, and
 * the page retries its streams.
 */
import { byId } from "./dom.ts";
import type { TokenStore } from "./token-store.ts";

export interface TokenDialogOptions {
  tokens: TokenStore;
  /** After a token was entered or forgotten. */
  onChange(): void;
}

export interface TokenDialog {
  /** Opens the dialog (once: a second call while open only updates the reason). */
  open(reason: string): void;
}

export function createTokenDialog(options: TokenDialogOptions): TokenDialog {
  const dialog = byId<HTMLDialogElement>("token-dialog");
  const form = byId<HTMLFormElement>("token-form");
  const input = byId<HTMLInputElement>("token-input");
  const reason = byId("token-reason");
  const forget = byId<HTMLButtonElement>("token-forget");
  const button = byId<HTMLButtonElement>("token-button");

  const open = (why: string) => {
    reason.textContent = why;
    forget.hidden = options.tokens.get() === undefined;
    button.hidden = false;
    if (!dialog.open) {
      input.value = "";
      dialog.showModal();
    }
    input.focus();
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (token === "") return;
    options.tokens.set(token);
    input.value = "";
    dialog.close();
    options.onChange();
  });
  forget.addEventListener("click", () => {
    options.tokens.clear();
    dialog.close();
    options.onChange();
  });
  button.addEventListener("click", () => open("Change or forget the bearer token of this tab."));
  button.hidden = options.tokens.get() === undefined;

  return { open };
}
