// The browser e2e app (tests/e2e/test_browser.py): @sentry/browser on a page of its own origin,
// sending to the relay on another. The page's query string carries the DSN and the release;
// the test drives the app through `window.e2e`.
import * as Sentry from '@sentry/browser';
import { processBatch } from './orders.js';

const params = new URLSearchParams(window.location.search);

Sentry.init({
  dsn: params.get('dsn'),
  release: params.get('release'),
  // Spans are a second data category: under an error quota they must still go out.
  tracesSampleRate: 1.0,
});

window.e2e = {
  sdkVersion: Sentry.SDK_VERSION,

  /** Runs the batch; a failure is captured and its event id and minified stack returned. */
  processOrders(items, note) {
    try {
      processBatch(items);
      return null;
    } catch (error) {
      if (note) {
        error.message += ' ' + note;
      }
      return { id: Sentry.captureException(error), stack: error.stack };
    }
  },

  /** Sends a root span named `name` (11.x streams it as a `span` item, category `span`). */
  transaction(name) {
    Sentry.startSpan({ name, forceTransaction: true }, () => {});
  },

  flush(timeoutMs) {
    return Sentry.flush(timeoutMs);
  },
};
