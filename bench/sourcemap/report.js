// Prints the Markdown results table of the source map benchmark from <out>/node.json and
// <out>/rust.json (see run.sh): medians with [min – max] over the runs, and ratios.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");

const out = process.argv[2];
const node = JSON.parse(fs.readFileSync(path.join(out, "node.json"), "utf8"));
const rust = JSON.parse(fs.readFileSync(path.join(out, "rust.json"), "utf8"));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, digits) => x.toFixed(digits);
const cell = (xs, scale, digits) =>
  `${fmt(median(xs) * scale, digits)} [${fmt(Math.min(...xs) * scale, digits)} – ${fmt(
    Math.max(...xs) * scale,
    digits
  )}]`;

const lines = [];
lines.push(
  `Machine: ${os.cpus()[0].model}, ${os.cpus().length} cores, ` +
    `${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}; ` +
    `${node.tool} on Node ${node.node}; ${rust.tool}, ` +
    `debug assertions ${rust.debug_assertions ? "on" : "off"}. ` +
    `Date: ${new Date().toISOString().slice(0, 10)}. Runs: ${node.cases[Object.keys(node.cases)[0]].parse_ms.length}.`
);
lines.push("");
lines.push(
  "| map | metric | Mozilla source-map 0.8 | relay (own index) | relay vs Mozilla |"
);
lines.push("|---|---|---|---|---|");
for (const name of Object.keys(node.cases)) {
  const n = node.cases[name];
  const r = rust.cases[name];
  const label = `${name} (${(n.map_bytes / 1024).toFixed(0)} KiB map, ${n.positions} positions)`;
  const parseRatio = median(n.parse_ms) / median(r.parse_ms);
  lines.push(
    `| ${label} | parse + index, ms | ${cell(n.parse_ms, 1, 2)} | ${cell(r.parse_ms, 1, 2)} | ` +
      `${parseRatio >= 1 ? fmt(parseRatio, 2) + "× faster" : fmt(1 / parseRatio, 2) + "× slower"} |`
  );
  if (r.parse_scopes_ms.length) {
    lines.push(
      `| | parse + index + scopes from the minified source, ms | n/a | ${cell(r.parse_scopes_ms, 1, 2)} | |`
    );
  }
  lines.push(
    `| | reopen from the disk cache (new store: scan, stat, mmap, validate, string table), ms | n/a | ${cell(r.reopen_ms, 1, 3)} | |`
  );
  const lookupRatio = median(r.lookups_per_s) / median(n.lookups_per_s);
  lines.push(
    `| | lookups, million/s | ${cell(n.lookups_per_s, 1e-6, 2)} | ${cell(r.lookups_per_s, 1e-6, 2)} | ` +
      `${lookupRatio >= 1 ? fmt(lookupRatio, 2) + "× faster" : fmt(1 / lookupRatio, 2) + "× slower"} |`
  );
  lines.push(
    `| | event-path lookups (owned strings + context lines), million/s | n/a | ${cell(
      r.lookups_event_per_s,
      1e-6,
      2
    )} | |`
  );
  lines.push(
    `| | built cache size | n/a | ${(r.cache_bytes / 1024).toFixed(0)} KiB | |`
  );
  lines.push(
    `| | results agree (checksum) | ${n.check} | ${r.check} | ${n.check === r.check ? "same" : "DIFFERENT"} |`
  );
}
console.log(lines.join("\n"));
