#!/usr/bin/env node
// Run a minified bundle under the real @sentry/node SDK and report the error it throws.
//
// Usage: node node_minified_client.js DSN BUNDLE [INPUT_JSON]
//   BUNDLE is a CommonJS file (e.g. built by esbuild --minify) that exports
//   `processBatch(items)`; it is called with INPUT_JSON (a JSON array of strings) inside
//   try/catch, and the error is sent with Sentry.captureException.
// Prints one JSON object on stdout: the event id, the SDK version, the error, and the frames
// of the exception exactly as the SDK sent them (from beforeSend), for the test to compare
// with what comes out of Kafka.
// Environment: E2E_RUN_ID (woven into the release), E2E_SDK_DEBUG.
'use strict';

const path = require('path');
const crypto = require('crypto');
const { createRequire } = require('module');

// @sentry/node lives in tests/node/node_modules (installed by scripts/test.sh with `npm ci`).
const Sentry = createRequire(path.join(__dirname, '..', 'node', 'package.json'))('@sentry/node');

const dsn = process.argv[2];
const bundle = path.resolve(process.argv[3]);
const input = JSON.parse(process.argv[4] || '["{\\"quantity\\": -3}"]');
const runId = process.env.E2E_RUN_ID || crypto.randomBytes(6).toString('hex');
const release = `e2e-node-minified@1.0.0+${runId}`;

const out = { run_id: runId, release, sdk: Sentry.SDK_VERSION, bundle };

Sentry.init({
  dsn,
  release,
  environment: 'e2e',
  sendClientReports: false,
  tracesSampleRate: 0,
  beforeSend(event) {
    const values = (event.exception && event.exception.values) || [];
    out.sent_exception = values.map((v) => ({
      type: v.type,
      value: v.value,
      frames: ((v.stacktrace && v.stacktrace.frames) || []).map((f) => ({
        filename: f.filename,
        abs_path: f.abs_path,
        module: f.module,
        function: f.function,
        lineno: f.lineno,
        colno: f.colno,
        in_app: f.in_app,
      })),
    }));
    out.sent_debug_meta = event.debug_meta || null;
    return event;
  },
  debug: !!process.env.E2E_SDK_DEBUG,
});

async function main() {
  // eslint-disable-next-line import/no-dynamic-require, global-require
  const app = require(bundle);
  try {
    app.processBatch(input);
    throw new Error('the bundle did not throw');
  } catch (e) {
    out.error_name = e.name;
    out.error_message = e.message;
    out.raw_stack = String(e.stack);
    out.exception = Sentry.captureException(e);
  }
  out.flushed = await Sentry.close(15000);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
