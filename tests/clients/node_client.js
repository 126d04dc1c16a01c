#!/usr/bin/env node
// Send real @sentry/node SDK traffic to a DSN and print what was sent as JSON.
//
// Usage: node node_client.js DSN [static|stream]
//   static (default): traceLifecycle 'static' -> message, exception, transaction,
//                     attachments; the automatic process session is sent on close.
//   stream:           default traceLifecycle 'stream' -> a span tree sent as ONE `span` item.
// Environment: E2E_RUN_ID, E2E_ATTACHMENT_BIN, E2E_ATTACHMENT_TXT (see python_client.py).
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { createRequire } = require('module');

// @sentry/node lives in tests/node/node_modules (installed by scripts/test.sh with `npm ci`).
const Sentry = createRequire(path.join(__dirname, '..', 'node', 'package.json'))('@sentry/node');

const dsn = process.argv[2] || process.env.SENTRY_DSN;
const mode = process.argv[3] || 'static';
const runId = process.env.E2E_RUN_ID || crypto.randomBytes(6).toString('hex');
const release = `e2e-node@1.0.0+${runId}`;

class E2ENodeError extends Error {
  constructor(message) {
    super(message);
    this.name = 'E2ENodeError';
  }
}

const transactionsSent = {};

Sentry.init({
  dsn,
  release,
  environment: 'e2e',
  tracesSampleRate: 1.0,
  sendClientReports: false,
  traceLifecycle: mode === 'stream' ? 'stream' : 'static',
  ...(mode === 'stream'
    ? {}
    : {
        beforeSendTransaction(event) {
          transactionsSent[event.transaction] = event.event_id;
          return event;
        },
      }),
  debug: !!process.env.E2E_SDK_DEBUG,
});

async function main() {
  const out = { run_id: runId, release, mode, sdk: Sentry.SDK_VERSION };

  if (mode === 'stream') {
    out.span_name = `e2e-node-span-${runId}`;
    await Sentry.startSpan({ name: out.span_name, op: 'task' }, async (span) => {
      const ctx = span.spanContext();
      out.trace_id = ctx.traceId;
      out.segment_span_id = ctx.spanId;
      await Sentry.startSpan({ name: 'SELECT 1', op: 'db' }, async (child) => {
        out.child_span_id = child.spanContext().spanId;
        await new Promise((r) => setTimeout(r, 10));
      });
    });
  } else {
    out.message_text = `e2e node message ${runId}`;
    out.message = Sentry.captureMessage(out.message_text);

    out.exception_value = `e2e node exception ${runId}`;
    try {
      throw new E2ENodeError(out.exception_value);
    } catch (e) {
      out.exception = Sentry.captureException(e);
    }

    out.transaction_name = `e2e-node-transaction-${runId}`;
    await Sentry.startSpan({ name: out.transaction_name, op: 'task' }, async () => {
      await Sentry.startSpan({ name: 'SELECT 1', op: 'db' }, async () => {
        await new Promise((r) => setTimeout(r, 10));
      });
    });

    const binData = process.env.E2E_ATTACHMENT_BIN
      ? fs.readFileSync(process.env.E2E_ATTACHMENT_BIN)
      : Buffer.from([104, 105, 0, 1, 2]);
    const txtData = process.env.E2E_ATTACHMENT_TXT
      ? fs.readFileSync(process.env.E2E_ATTACHMENT_TXT)
      : Buffer.from(`hello ${runId}\n`);
    out.attachment_text = `e2e node attachments ${runId}`;
    Sentry.withScope((scope) => {
      scope.addAttachment({ filename: 'hello.bin', data: new Uint8Array(binData), contentType: 'application/octet-stream' });
      scope.addAttachment({ filename: 'hello.txt', data: txtData.toString('utf8'), contentType: 'text/plain' });
      out.attachments = Sentry.captureMessage(out.attachment_text);
    });
    out.attachment_sizes = { 'hello.bin': binData.length, 'hello.txt': txtData.length };
  }

  // close() flushes the queue and ends the automatic process session (sent as a `session` item).
  await Sentry.flush(15000);
  out.transaction = out.transaction_name ? transactionsSent[out.transaction_name] || null : undefined;
  await Sentry.close(15000);
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
