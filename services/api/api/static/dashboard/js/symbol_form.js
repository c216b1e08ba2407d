// Search and add: typing filters the watch list; submitting a symbol that is not on it adds it
// through POST /v1/symbols. Adding needs an API key with the write scope, so when the api
// refuses for want of one the form asks for a key (kept in sessionStorage, see api.js) and
// tries again with it.
import { HttpError, apiKey, postJson, setApiKey } from "./api.js";

const SYMBOL_PATTERN = /^[A-Z0-9][A-Z0-9.\-]{0,14}$/;

export class SymbolForm {
  constructor(elements, watchlist, onPicked, onKeySaved) {
    this.form = elements.form;
    this.input = elements.input;
    this.keyForm = elements.keyForm;
    this.keyInput = elements.keyInput;
    this.message = elements.message;
    this.watchlist = watchlist;
    this.onPicked = onPicked;
    this.onKeySaved = onKeySaved;
    this.pending = null;
    this.input.addEventListener("input", () => this.watchlist.filter(this.input.value.trim().toUpperCase()));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit(this.input.value.trim().toUpperCase());
    });
    this.keyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      setApiKey(this.keyInput.value.trim());
      this.keyInput.value = "";
      this.keyForm.hidden = true;
      if (this.pending) this.submit(this.pending);
      else this.onKeySaved();
    });
  }

  askForKey(text) {
    this.keyForm.hidden = false;
    this.keyInput.focus();
    this.say(text, "error");
  }

  say(text, state = "") {
    this.message.textContent = text;
    this.message.dataset.state = state;
  }

  async submit(symbol) {
    if (!symbol) return;
    if (this.watchlist.rows.has(symbol)) {
      this.clear();
      this.onPicked(symbol);
      return;
    }
    if (!SYMBOL_PATTERN.test(symbol)) {
      this.say(`"${symbol}" is not a ticker (up to 15 letters, digits, dots or dashes).`, "error");
      return;
    }
    this.pending = symbol;
    this.say(`Adding ${symbol}…`);
    try {
      await postJson("/v1/symbols", { symbol });
    } catch (error) {
      if (error instanceof HttpError && (error.status === 401 || error.status === 403)) {
        this.askForKey(
          apiKey()
            ? `That key may not add symbols (${error.message}). Enter a key with the write scope.`
            : "Adding a symbol needs an API key with the write scope.",
        );
        return;
      }
      this.say(`Could not add ${symbol}: ${error.message}`, "error");
      return;
    }
    this.pending = null;
    this.clear();
    this.say(`Added ${symbol}; prices appear when the fetcher has one.`, "ok");
    this.onPicked(symbol, true);
  }

  clear() {
    this.input.value = "";
    this.watchlist.filter("");
  }
}
