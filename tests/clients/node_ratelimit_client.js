#!/usr/bin/env node
// Drive the real @sentry/node SDK into a rate limit and print what happened as JSON.
//
// Usage: node node_ratelimit_client.js DSN
// Environment: E2E_RUN_ID, E2E_ERRORS (default 20), E2E_TRANSACTIONS (default 5),
//              E2E_SDK_DEBUG.
//
// The SDK runs with its defaults for what matters here: client reports on
// (sendClientReports), the rate-limit state kept by @sentry/core's transport, and
// Sentry.flush() sending the pending client report (NodeClient.flush -> _flushOutcomes).
// traceLifecycle 'static' so that spans go out as `transaction` items.
//
// @sentry/core's transport sends up to 64 requests concurrently, so errors captured in a tight
// loop would all be in flight before the first 429 comes back. Like an application whose
// errors come one after another, the client waits until each capture has gone through the
// transport (sent, or dropped by the SDK's own rate-limit check) before the next one.
//
// The transport is wrapped (makeNodeTransport still does the work) to record, for every
// envelope the client hands it, its item types, the HTTP status (none when the SDK dropped it
// without a request), the rate-limit headers, and the payloads of client_report items.
'use strict';

const path = require('path');
const crypto = require('crypto');
const { createRequire } = require('module');

const Sentry = createRequire(path.join(__dirname, '..', 'node', 'package.json'))('@sentry/node');

const dsn = process.argv[2] || process.env.SENTRY_DSN;
const runId = process.env.E2E_RUN_ID || crypto.randomBytes(6).toString('hex');
const release = `e2e-node-ratelimit@1.0.0+${runId}`;
const nErrors = parseInt(process.env.E2E_ERRORS || '20', 10);
const nTransactions = parseInt(process.env.E2E_TRANSACTIONS || '5', 10);

const sends = []; // one entry per envelope given to the transport, filled in when settled

function observingTransport(options) {
  const inner = Sentry.makeNodeTransport(options);
  return {
    send(envelope) {
      const entry = { items: [], client_reports: [], status: null, settled: false };
      for (const [headers, payload] of envelope[1]) {
        entry.items.push(headers.type);
        if (headers.type === 'client_report') entry.client_reports.push(payload);
      }
      sends.push(entry);
      return inner.send(envelope).then(
        (res) => {
          entry.status = res && res.statusCode !== undefined ? res.statusCode : null;
          const h = (res && res.headers) || {};
          entry.retry_after = h['retry-after'] || null;
          entry.rate_limits = h['x-sentry-rate-limits'] || null;
          entry.settled = true;
          return res;
        },
        (err) => {
          entry.error = String(err);
          entry.settled = true;
          throw err;
        },
      );
    },
    flush: (timeout) => inner.flush(timeout),
  };
}

const transactionsSent = {};

Sentry.init({
  dsn,
  release,
  environment: 'e2e',
  tracesSampleRate: 1.0,
  traceLifecycle: 'static',
  sendClientReports: true,
  transport: observingTransport,
  beforeSendTransaction(event) {
    transactionsSent[event.transaction] = event.event_id;
    return event;
  },
  debug: !!process.env.E2E_SDK_DEBUG,
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Wait until `n` envelopes have reached the transport and all of them have settled.
async function settled(n, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (sends.length >= n && sends.every((s) => s.settled)) return true;
    await sleep(5);
  }
  return false;
}

class E2ERateLimitError extends Error {
  constructor(message) {
    super(message);
    this.name = 'E2ERateLimitError';
  }
}

async function main() {
  const out = { run_id: runId, release, sdk: Sentry.SDK_VERSION, errors: [], transactions: [],
                timeouts: 0 };
  const txAfter = new Set();
  for (let k = 0; k < nTransactions; k++) txAfter.add(Math.floor(((k + 1) * nErrors) / nTransactions));

  for (let i = 1; i <= nErrors; i++) {
    const before = sends.length;
    if (i % 2) {
      out.errors.push(Sentry.captureMessage(`e2e ratelimit message ${i} ${runId}`, 'error'));
    } else {
      try {
        throw new E2ERateLimitError(`e2e ratelimit exception ${i} ${runId}`);
      } catch (e) {
        out.errors.push(Sentry.captureException(e));
      }
    }
    if (!(await settled(before + 1))) out.timeouts += 1;
    if (txAfter.has(i)) {
      const name = `e2e-ratelimit-tx-${out.transactions.length + 1}-${runId}`;
      const beforeTx = sends.length;
      await Sentry.startSpan({ name, op: 'task' }, async () => {
        await Sentry.startSpan({ name: 'SELECT 1', op: 'db' }, async () => {
          await sleep(2);
        });
      });
      if (!(await settled(beforeTx + 1))) out.timeouts += 1;
      out.transactions.push({ name, event_id: transactionsSent[name] || null });
    }
  }

  // NodeClient.flush() sends the pending client report (ratelimit_backoff discards).
  await Sentry.flush(15000);
  await settled(sends.length, 15000);
  for (const t of out.transactions) t.event_id = t.event_id || transactionsSent[t.name] || null;
  await Sentry.close(15000);
  out.requests = sends.map(({ settled: _s, ...rest }) => rest);
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
