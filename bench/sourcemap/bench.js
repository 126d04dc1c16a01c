// Mozilla source-map 0.8 side of the source map benchmark (see run.sh).
//
//   node bench.js <fixtures/js dir> <out dir> <runs> [parse reps] [lookup reps]
//
// For each case of cases.json it writes <out>/positions-<case>.json (every generated position
// of the map, 1-based line and 1-based column, the positions the Rust side looks up too) and
// then times, per run:
//   parse: `await new SourceMapConsumer(text)` plus the first lookup (0.8 parses and indexes
//          the mappings lazily, on the first query), then `destroy()`; the mean of
//          <parse reps> parses;
//   lookup: `originalPositionFor` over all positions, <lookup reps> passes, touching
//          source/line/name of each result; reported as lookups per second.
// One untimed warm-up run comes first. `check` (sum of 1-based original lines plus the number
// of results with a name) must equal the Rust side's: both resolve every position alike.
// Results go to <out>/node.json.
"use strict";

const fs = require("fs");
const path = require("path");
const { performance } = require("perf_hooks");
const { SourceMapConsumer } = require("source-map");

async function positionsOf(text) {
  const consumer = await new SourceMapConsumer(text);
  const seen = new Set();
  const positions = [];
  consumer.eachMapping((m) => {
    const key = m.generatedLine * 1e7 + m.generatedColumn;
    if (!seen.has(key)) {
      seen.add(key);
      positions.push([m.generatedLine, m.generatedColumn + 1]);
    }
  });
  consumer.destroy();
  return positions;
}

async function parseMean(text, first, reps) {
  const start = performance.now();
  for (let i = 0; i < reps; i++) {
    const consumer = await new SourceMapConsumer(text);
    consumer.originalPositionFor({ line: first[0], column: first[1] - 1 });
    consumer.destroy();
  }
  return (performance.now() - start) / reps;
}

function lookupPass(consumer, positions) {
  let check = 0;
  for (const [line, col] of positions) {
    const pos = consumer.originalPositionFor({ line, column: col - 1 });
    if (pos.source !== null) check += pos.line + (pos.name !== null ? 1 : 0);
  }
  return check;
}

function lookupsPerSecond(consumer, positions, reps) {
  let check = 0;
  const start = performance.now();
  for (let i = 0; i < reps; i++) check = lookupPass(consumer, positions);
  const seconds = (performance.now() - start) / 1000;
  return { perSecond: (positions.length * reps) / seconds, check };
}

async function main() {
  const [fixtures, out, runsArg, parseRepsArg, lookupRepsArg] = process.argv.slice(2);
  const runs = Number(runsArg || 7);
  const parseReps = Number(parseRepsArg || 10);
  const lookupReps = Number(lookupRepsArg || 20);
  const cases = JSON.parse(fs.readFileSync(path.join(__dirname, "cases.json"), "utf8"));
  fs.mkdirSync(out, { recursive: true });
  const results = {
    tool: "source-map " + require("source-map/package.json").version,
    node: process.version,
    cases: {},
  };
  for (const c of cases) {
    const text = fs.readFileSync(path.join(fixtures, c.map), "utf8");
    const positions = await positionsOf(text);
    fs.writeFileSync(path.join(out, `positions-${c.name}.json`), JSON.stringify(positions));
    const parse = [];
    const lookups = [];
    let check = 0;
    for (let run = -1; run < runs; run++) {
      const parseMs = await parseMean(text, positions[0], parseReps);
      const consumer = await new SourceMapConsumer(text);
      const looked = lookupsPerSecond(consumer, positions, lookupReps);
      consumer.destroy();
      if (run >= 0) {
        parse.push(parseMs);
        lookups.push(looked.perSecond);
      }
      check = looked.check;
    }
    results.cases[c.name] = {
      map_bytes: Buffer.byteLength(text),
      positions: positions.length,
      check,
      parse_ms: parse,
      lookups_per_s: lookups,
    };
    console.error(`node: ${c.name}: ${positions.length} positions, ${runs} runs`);
  }
  fs.writeFileSync(path.join(out, "node.json"), JSON.stringify(results, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
