"""Turns bench/run.sh results into the sections of docs/benchmarks.md.

    report.py half-rate RESULTS/intake         -> half of the relay's median max rate (req/s)
    report.py overload-rate RESULTS/overload   -> 10x the sustainable rate (req/s)
    report.py intake|kafka|overload|micro RESULTS COMMAND
        -> writes (or replaces) that section of docs/benchmarks.md; other sections are kept.

Every number is a median over the repetitions with [min, max] beside it; ratios are ratios of
medians. Targets (issue 8) are checked here and printed as PASS/FAIL.
"""

import glob
import json
import os
import re
import statistics
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.environ.get("BENCH_DOC") or os.path.join(REPO, "docs", "benchmarks.md")
DOC_HEAD = """# Benchmarks

Numbers measured side by side with a baseline, in the same run on the same machine (issue 8).
Each section names its command; rerun it to update that section (others are left alone).
"""


# What the profiles of the misses showed (perf record -F 499 --call-graph dwarf on the release
# build, cpu-clock: the VM has no hardware counters). Static text: re-profile after changes.
INTAKE_PROFILE = """**Where the time goes** (`perf record --call-graph dwarf`, cpu-clock, release build, same
oha load; percentages of the relay's CPU samples). The noop handler costs a few µs per
request; the relay does the intake *and*, concurrently on the same 2 cores, the whole pipeline
behind it. Since the pipeline runs in lanes (commit 7b2d0a1, two here) it publishes all that
the intake accepts at full load ("events delivered" above; 23.9k of 23.9k events/s at
c3d11b2, the first run with lanes). Before, it published most of it: 25.2k of 26.1k events/s at commit c206aa1, the
first run with the release profile's fat LTO; 22.6k of 24.2k at e57e65e; 21.4k of 24.6k at
e47e3d7; 17.6k of 23.8k for the build before e47e3d7, run just before it with `RELAY_BIN`;
before commit 4349c65, a third: 6.5k of 19.5k events/s. The rest waited in the spool, so a
sustained full load would eventually fill the spool and be answered 503 (see Overload). The
second lane takes its CPU from the HTTP workers, on a machine whose 2 cores the load generator
and the broker share: requests/s went from 26,132 (c206aa1) to 23,921 (c3d11b2), the noop
ceiling from 124,576 to 115,846 in the same runs (0.21 in both). The reader's two later
savings (release batching, the UTF-8 check; see the Kafka section) did not move the intake:
the table above, run after them, is within the runs' noise. Alternating the builds under the same
load (`bench/intake/compare.sh`, 10 s each, three rounds): one lane (commit 7a08f4e) answered
25.0k–27.3k requests/s and published 78–90 % of them while the load lasted, p99 7.9–8.0 ms;
two lanes 20.4k–22.4k, all of them published, p99 11.4–12.1 ms; the lanes build with
`pipeline.lanes: 1` 22.8k–25.8k and 80–98 %. Events published per second were about the same
(19.1k–24.6k with one lane, 20.4k–22.4k with two): the machine is saturated, and one lane
only lets the intake run ahead of the pipeline into the spool. On a relay whose cores are its
own, one lane would cap publishing at one core while the intake used them all.

- intake ~30 %: HTTP handling, decompression ~9 %, envelope parsing (no rate limiter hop: the
  benchmark's project has no quotas);
  the spool writer ~7 % (mostly `fdatasync`: `fsync: always`);
- pipeline ~55 %: the `serde_json::Value` parse of each event ~15 %, normalization ~15 %,
  scrubbing and grouping ~10 %, message build and produce ~7 %, freeing the trees ~4 %.

What changed, measured by draining a 40,000-entry spool into tansu (relay CPU per run, same
machine, back to back; `/proc/PID/stat`; now `bench/kafka/drain-cpu.sh RELAY_BIN 40000`):

| change | relay CPU for 40,000 events | per event |
|---|---|---|
| before (commit 14bd4b1) | 8.0 s | 200 µs |
| `max_in_flight` 1024 → 256 (the mailbox capacity): 15,300 of the 40,000 entries had been refused by a full Normalizer and parsed again on retry | 4.6 s | 116 µs |
| the stages share one arbiter; mimalloc (perf before: context switches ~30 %, glibc `malloc`/`free` ~25 %) | 2.3 s | 58 µs |
| PII key rules built once per project, fast paths for valid frames, databags and short strings | 1.9–2.2 s | 48–54 µs |
| the final build (commit 312ddbc), two runs alternating with the 14bd4b1 build on a quiet machine | 1.5–1.6 s (14bd4b1: 5.5–8.5 s, 2,812–3,910 retries) | 37–41 µs (14bd4b1: 137–212 µs) |
| the event's tree and items freed as soon as its Kafka messages are built, not after the delivery wait (commit e47e3d7; perf of the drain: freeing the trees ~16 % of the relay's CPU before, ~3 % after: a tree freed after the wait has left the CPU's caches), three runs alternating with the eb91aa1 build | 1.18–1.25 s (eb91aa1: 1.29–1.51 s) | 30–31 µs (eb91aa1: 32–38 µs) |
| five smaller fixes from the same profile (commits 0fb753d–dbb996c): grouping skips its regexes for plain frame names, no random fallback key drawn for envelopes with an event id, a spool release checks only its own segment, header lines read without serde's `flatten`, frames already valid skip the per-rule fixes; each was 1–3 % of the profile (criterion: `fingerprint` python/0002_event 2.42 → 1.38 µs, `envelope_parse` −7 % to −21 %, `normalize_event` python/0002_event 4.02 → 2.85 µs), together within the drain's noise; three runs of the 421aed7 build alternating with the eb91aa1 build, then three of dbb996c alternating with 421aed7 | 1.18–1.21 s (eb91aa1: 1.41–1.49 s); dbb996c 1.08–1.21 s (421aed7: 1.15–1.16 s) | 30 µs (eb91aa1: 35–37 µs); dbb996c 27–30 µs (421aed7: 29 µs) |
| the release profile's fat LTO and one codegen unit (commit c0cd92d), three runs alternating with a build of 395d29a with the default profile | 1.17–1.19 s (395d29a: 1.33–1.40 s) | 29–30 µs (395d29a: 33–35 µs) |

The first profile (commit a61c82a: 8,603 req/s, 0.07×) also showed a whole `Value` built at the
intake only to read `event_id`, a blocking-pool round trip per request to decompress 1.4 kB,
and two thread hops through the Symbolicator's `SyncArbiter` for every event; commit a402994
removed those. 0.5× of a handler that does no work is still out of reach: at ~50 µs of CPU per
event for decompressing, parsing, syncing, normalizing, scrubbing, grouping and publishing,
against a few µs for the noop, on the same 2 cores as the load generator. What would move it:
a typed event model instead of `serde_json::Value` trees (parse, normalization and
serialization are most of what is left).
"""

KAFKA_PROFILE = """**Why the Kafka target is missed.** The spool drain is the pipeline's rate, not the
producer's: the bare producer sends finished messages (it measures librdkafka and tansu
alone), while the relay parses, normalizes, scrubs, groups and serializes each event first,
on its pipeline lanes (about 30 µs of CPU per event, see the Intake section; 200 µs at
commit 14bd4b1, when the drain ran at 6,119 messages/s). The publish stage alone, measured in
the second table, is the fairer comparison and still misses.

The stage, step by step (each the stage benchmark, same harness):
- each envelope's delivery wait was spawned into the producer actor's context, which polls
  every future spawned into it whenever it wakes (256 outstanding envelopes: 256 polls per
  message); they are runtime tasks now: 30k → 35k messages/s, then 43k with the benchmark
  feeding the producer from its own arbiter as the spool reader does;
- the event's tree is freed right after serialization, while it is still in the CPU's caches
  (commit e47e3d7): 40,414 → 42,235 messages/s (separate runs), and the spool drain 26,198 →
  36,012 (in the drain's profile, freeing fell from ~16 % to ~3 % of the relay's CPU);
- profiled at commit 0fb753d (`perf record`, 50,000 messages at 42,276 messages/s), the
  stage was not CPU-bound: its thread was on the CPU about 0.55 s of the 1.18 s window
  (`KafkaProducer` about 9.6 µs per message, half of it serialization). The bound was the
  spool reader's in-flight limit, whose slots were held until the delivery reports: 256
  envelopes, each waiting for `linger.ms` (5 ms) and the broker's answer, allow about
  256 / 6 ms ≈ 43,000 messages/s, whatever the CPU. Raising `max_in_flight` did not help
  (1,024: 41–44 µs of CPU per drained event against 33–35, because it also lets more events
  be parsed and processed at once);
- since commit 395d29a a slot is given back once the envelope's messages are queued in
  librdkafka, and the wait for delivery is bounded by `pipeline.delivery_window_bytes`
  (8 MiB of spooled entries) instead: 42,235 → 88,137 messages/s (0.12 → 0.24, run at
  acc9ab4; 85,936 and 0.25 in the table above, with the LTO release profile of c0cd92d).
  That is close to what the 9.6 µs of producer-thread CPU per message profiled before
  allows (about 100,000 messages/s; not profiled again). The spool drain did not move
  (35,058 messages/s at acc9ab4; 36,932 above; its pipeline is CPU-bound), and its peak RSS
  rose from 54 MB in the run before to 78 MB (the window holds more entries). Where it matters is a distant broker: with
  `linger.ms: 50` the drain went from 4,380–4,480 to 18,400–24,300 events/s
  (`KAFKA_PRODUCER='"linger.ms": "50"' bench/kafka/drain-cpu.sh`, alternating builds);
- since commit 7b2d0a1 the pipeline runs in lanes, one per core (two here), each a thread
  with its own reader, stages and `KafkaProducer` (`docs/architecture.md`). Until then one
  thread did all the pipeline's work: draining alone (`bench/kafka/drain-cpu.sh`, 100,000
  entries), it was on the CPU 2.7–2.9 s of a 3.8–4.0 s drain while tansu used 0.1–0.2 s of
  the other core. The stage went from 85,936 (one producer, run at ac9cd5b) to 150,847
  messages/s (0.25 → 0.38, run at c3d11b2); the spool drain from 36,932 to 42,575 (0.13 →
  0.15). In this harness the consumer that checks the topic and the delivery watcher share
  the cores with the drain; without them (`drain-cpu.sh`, three runs alternating with commit 7a08f4e)
  the drain went from 25,100–26,200 to 35,000–44,700 events/s, at 31–35 µs of CPU per event
  against 30–32. Peak RSS while draining rose from 74 to 86 MB (two lanes' worth of events
  in processing);
- two costs of the spool reader, found in the two-lane drain's profile: each release was
  recorded with its own `write` call, under the spool's lock, which the lanes share; release
  records are now written in batches of 64 (commit 4d2ad98; `Spool::release` 4.1 % → 1.4 %
  of the relay's CPU). And serde_json, parsing an event from bytes, checked the UTF-8 of each
  string on its own; the reader now checks the whole event in one pass and parses it as a
  `str` (73209af). Draining alone (`drain-cpu.sh`, alternating with the build before each):
  33–37 → 32–33, then 30–31 → 27–28 µs of CPU per event. The spool drain in the table above
  went from 42,575 to 58,917 messages/s (0.15 → 0.19).

The bare producer's messages were serialized beforehand: its `BaseProducer` does a few µs of
work per message, all of it inside librdkafka. At 0.8× its rate (about 300,000 messages/s
here) the relay's stage would have about 3 µs per message for serializing a 3.5 kB event and
producing it; serde_json alone takes 1.7 µs to serialize this event with hot caches (15 %
less with a hand-written writer, tried and not kept). What would move it further: a typed
event model, serialized straight to JSON and freed as one buffer.
"""


def load(path):
    with open(path) as f:
        return json.load(f)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def spread(values, fmt="{:,.0f}"):
    """'median [min–max]'"""
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    return f"{fmt.format(med(values))} [{fmt.format(min(values))}–{fmt.format(max(values))}]"


def verdict(ok):
    return "**PASS**" if ok else "**FAIL**"


def rss_mb(path):
    """Peak and mean VmRSS (MB) of a sampler file ('time kB' lines)."""
    try:
        with open(path) as f:
            kb = [int(line.split()[1]) for line in f if len(line.split()) == 2]
    except FileNotFoundError:
        return None, None, []
    if not kb:
        return None, None, []
    mb = [k / 1024 for k in kb]
    return max(mb), statistics.mean(mb), mb


def oha(path):
    """requests/s answered 200, and p50/p99 latency (ms), from oha's JSON output."""
    data = load(path)
    summary = data["summary"]
    statuses = data.get("statusCodeDistribution", {})
    ok = statuses.get("200", 0)
    total_s = summary["total"]
    pct = data.get("latencyPercentiles", {})
    return {
        "ok_rps": ok / total_s if total_s else 0.0,
        "rps": summary.get("requestsPerSec"),
        "p50_ms": (pct.get("p50") or 0) * 1000,
        "p99_ms": (pct.get("p99") or 0) * 1000,
        "statuses": statuses,
        "errors": data.get("errorDistribution", {}),
        "success": summary.get("successRate"),
    }


def redis_fallback(path):
    """relay_quota_redis_errors_total summed over reasons, from a /metrics dump."""
    try:
        with open(path) as f:
            return int(sum(float(line.rsplit(" ", 1)[1]) for line in f
                           if line.startswith("relay_quota_redis_errors_total")))
    except FileNotFoundError:
        return None


def reps(pattern):
    """The per-repetition files matching pattern ('NAME-<rep>.json'), in repetition order."""
    found = [(re.search(r"-(\d+)\.json$", p), p) for p in glob.glob(pattern)]
    return [p for _, p in sorted((int(m.group(1)), p) for m, p in found if m)]


def env_block(out, command, shape=None):
    env = load(os.path.join(out, "env.json"))
    if shape is None:
        shape = f"{env['reps']} repetitions, {env['duration_s']} s per load point"
    one_minute = float(env["loadavg_start"].split()[0])
    if one_minute >= 1.0:
        busy = ("other work was running on the same 2 cores, so absolute numbers are noisy; the "
                "ratios come from interleaved runs")
    else:
        busy = "nothing else was running; the ratios come from interleaved runs"
    return (
        f"Machine: {env['nproc']} cores ({env['cpu']}), {env['mem']} RAM; date {env['date']}; "
        f"commit {env['commit']}; load average at start {env['loadavg_start']} ({busy})."
        f"\n\nCommand: `{command}` ({shape}).\n"
    )


def write_section(name, body):
    """Replaces '## name' (up to the next '## ') in docs/benchmarks.md, or appends it."""
    text = open(DOC).read() if os.path.exists(DOC) else DOC_HEAD
    section = f"## {name}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    text = text.rstrip("\n") + "\n"
    with open(DOC, "w") as f:
        f.write(text)
    print(f"{DOC}: wrote section '{name}'", file=sys.stderr)


# ------------------------------------------------------------------------------------------
def half_rate(dir_):
    relay = [oha(p)["ok_rps"] for p in reps(os.path.join(dir_, "relay-*.json"))]
    print(max(1, int(med(relay) / 2)))


def intake(out, command):
    d = os.path.join(out, "intake")
    noop = [oha(p) for p in reps(os.path.join(d, "noop-*.json"))]
    relay_paths = reps(os.path.join(d, "relay-*.json"))
    relay = [oha(p) for p in relay_paths]
    half = [oha(p) for p in reps(os.path.join(d, "half-*.json"))]
    kafka = [load(p.replace(".json", ".kafka.json")) for p in relay_paths]
    rss_full = [rss_mb(p.replace(".json", ".rss"))[0] for p in relay_paths]
    rss_half = [rss_mb(os.path.join(d, f"half-{i + 1}.rss"))[0] for i in range(len(half))]
    noop_rps = [r["ok_rps"] for r in noop]
    relay_rps = [r["ok_rps"] for r in relay]
    ratios = [r / n for r, n in zip(relay_rps, noop_rps)]
    ratio = med(relay_rps) / med(noop_rps)
    p99_half = med([r["p99_ms"] for r in half])
    peak_rss = max([x for x in rss_full if x is not None], default=float("nan"))
    delivered = [k["delivered_during"] / k["duration_s"] for k in kafka]
    # oha cuts the requests in flight when its duration ends ('aborted due to deadline'):
    # not answers of the server.
    non200 = [sum(v for k, v in r["statuses"].items() if k != "200")
              + sum(v for k, v in r["errors"].items() if k != "aborted due to deadline")
              for r in relay + half]
    half_rate = (half and load(reps(os.path.join(d, "half-*.json"))[0])) or {}
    redis_paths = reps(os.path.join(d, "redis-*.json"))
    redis = [oha(p) for p in redis_paths]
    redis_rps = [r["ok_rps"] for r in redis]
    redis_ratio = med(redis_rps) / med(relay_rps) if redis else float("nan")
    redis_ratios = [q / r for q, r in zip(redis_rps, relay_rps)]
    fallbacks = [redis_fallback(p.replace(".json", ".metrics.txt")) for p in redis_paths]
    non200 += [sum(v for k, v in r["statuses"].items() if k != "200")
               + sum(v for k, v in r["errors"].items() if k != "aborted due to deadline")
               for r in redis]
    body = f"""
Item 1 of issue 8. The real capture `fixtures/sdk/python/0002_event` (an error envelope from
sentry-python 2.75, 1,423 bytes gzip'd, 3,548 decompressed) posted again and again by `oha`
1.16 (64 connections, keep-alive, {load(os.path.join(out, 'env.json'))['duration_s']} s per
point) with the capture's headers (`Content-Encoding: gzip`, `X-Sentry-Auth`), to:

- **noop**: `bench/intake/noop-server`, an actix-web 4 handler (same version, same worker count
  as the relay) that reads the body, drops it and answers `200 {{"id": ...}}`: the ceiling;
- **relay**: the release build of `relay run` (config: one project, per-IP limit off, default
  spool with `fsync: always`, default pipeline) publishing to tansu 0.6 (in-memory) on the same
  machine; a fresh relay and data dir per repetition; tansu runs during both;
- **relay, Redis quotas**: the same relay with a `redis` section (Debian's redis-server on
  the same machine, no persistence) and one project quota on `error` that no run reaches, so
  every request is checked in Redis (one script call); run right after the relay without
  quotas in each repetition (issue 19: at least 0.8× of it).

oha runs on the same 2 cores, so the noop ceiling is partly oha's own limit. "Half its max
rate" is oha `-q` at half the relay's median full-load rate, a fresh relay each repetition.

{env_block(out, command)}
| | noop ceiling | relay | relay / noop | target |
|---|---|---|---|---|
| requests/s answered 200 | {spread(noop_rps)} | {spread(relay_rps)} | {ratio:.2f} (per rep: {", ".join(f"{x:.2f}" for x in ratios)}) | ≥ 0.5: {verdict(ratio >= 0.5)} |
| p50 latency at full load, ms | {spread([r["p50_ms"] for r in noop], "{:.2f}")} | {spread([r["p50_ms"] for r in relay], "{:.2f}")} | | |
| p99 latency at full load, ms | {spread([r["p99_ms"] for r in noop], "{:.2f}")} | {spread([r["p99_ms"] for r in relay], "{:.2f}")} | | |
| relay at half its max rate ({len(half) and int(med([h['rps'] for h in half]))} req/s): p50 / p99 ms | | {spread([r["p50_ms"] for r in half], "{:.2f}")} / {spread([r["p99_ms"] for r in half], "{:.2f}")} | | p99 ≤ 20 ms: {verdict(p99_half <= 20)} |
| relay RSS at full load, peak MB (1 s samples) | | {spread(rss_full, "{:.0f}")} (half load: {spread(rss_half, "{:.0f}")}) | | ≤ 300 MB: {verdict(peak_rss <= 300)} |
| events delivered to Kafka during the full-load window, per s | | {spread(delivered)} | | |
| relay with Redis quotas: requests/s answered 200 (vs relay) | | {spread(redis_rps)} | {redis_ratio:.2f} (per rep: {", ".join(f"{x:.2f}" for x in redis_ratios)}) | ≥ 0.8: {verdict(redis_ratio >= 0.8)} |
| relay with Redis quotas: p99 latency at full load, ms | | {spread([r["p99_ms"] for r in redis], "{:.2f}")} | | |

Redis quota checks not answered by Redis in those runs (`relay_quota_redis_errors_total`,
counted locally instead): {", ".join(str(f) for f in fallbacks) or "n/a"}.

Non-200 answers or transport errors in the relay runs: {sum(non200)} (requests cut by oha at
the end of each run are not counted).

{INTAKE_PROFILE}
"""
    write_section("Intake → Kafka", body)


# ------------------------------------------------------------------------------------------
def kafka(out, command):
    d = os.path.join(out, "kafka")
    relay = [load(p) for p in reps(os.path.join(d, "relay-*.json"))]
    bare = [load(p) for p in reps(os.path.join(d, "bare-*.json"))]
    relay_dl = [load(os.path.join(d, f"relay-{i + 1}.delivered.json")) for i in range(len(relay))]
    bare_prod = [load(os.path.join(d, f"bare-{i + 1}.producer.json")) for i in range(len(bare))]
    relay_rate = [r["delivered_per_s"] for r in relay_dl]
    bare_rate = [p["delivered_per_s"] for p in bare_prod]
    ratio = med(relay_rate) / med(bare_rate)
    per_rep = [r / b for r, b in zip(relay_rate, bare_rate) if r and b]
    rss = [rss_mb(os.path.join(d, f"relay-{i + 1}.rss"))[0] for i in range(len(relay))]
    n = relay[0]["messages"] if relay else 0
    complete = all(r["messages"] >= n and r["distinct_keys"] >= n for r in relay + bare)
    body = f"""
Item 2 of issue 8. The relay's publish path against a bare producer, the same messages to the
same broker (tansu 0.6, in memory, 3 partitions, a fresh broker per run):

- **relay**: a spool pre-filled with {n:,} envelopes (the capture of the intake benchmark, each
  with its own event id, posted while Kafka was unreachable) is drained by a fresh `relay run`
  (release build): spool read, envelope parse, normalization, scrubbing, grouping, message
  build, rdkafka produce, delivery reports, spool release;
- **bare**: `bench/kafka/bare_producer.py`, confluent-kafka (librdkafka) sending exactly the
  relay's messages (dumped from the relay's first run: same keys, same JSON values) with the
  relay's producer settings: `enable.idempotence=true, acks=all, compression.type=lz4,
  linger.ms=5, message.max.bytes=8388608, queue.buffering.max.kbytes=131072`.

Rate = messages delivered (acknowledged by the broker) per second, in steady state: the bare
producer from its first `produce()` to the end of `flush()`, after one warm-up message
(connection, metadata, idempotent producer id); the relay from its first delivery to its last,
by `relay_kafka_messages_total{{result="delivered"}}` polled every 20 ms
(`bench/kafka/watch_delivered.py`). A consumer (`bench/kafka/consume.py`) reads the topic in
every run and checks that all {n:,} messages (distinct keys) arrived. (Consumer-side arrival
rates are listed too, but they are not a fair measure of the bare producer: the consumer shares
the 2 cores and either lags behind it or reads its whole output in one burst.)

{env_block(out, command, f"{len(relay)} repetitions of each, interleaved")}
| | bare producer | relay | relay / bare | target |
|---|---|---|---|---|
| messages/s (delivery reports) | {spread(bare_rate)} | {spread(relay_rate)} | {ratio:.2f} (per rep: {", ".join(f"{x:.2f}" for x in per_rep)}) | ≥ 0.8: {verdict(ratio >= 0.8)} |
| messages/s on the consumer side (see above) | {spread([r["rate_per_s"] for r in bare])} | {spread([r["rate_per_s"] for r in relay])} | | |
| relay RSS while draining, peak MB | | {spread(rss, "{:.0f}")} | | ≤ 300 MB: {verdict(max([x for x in rss if x], default=0) <= 300)} |

Every run delivered all {n:,} messages: {"yes" if complete else "**no**"}.
{stage_table(os.path.join(d, "stage.json"))}
{KAFKA_PROFILE}
"""
    write_section("Kafka publish", body)


def stage_table(path):
    """The publish stage alone: relay-server/benches/kafka_publish.rs's JSON, when it ran."""
    if not os.path.exists(path):
        return ""
    s = load(path)
    relay, bare = s["relay_msgs_per_s"], s["bare_msgs_per_s"]
    ratio = med(relay) / med(bare)
    per_rep = ", ".join(f"{r / b:.2f}" for r, b in zip(relay, bare))
    return f"""
**The publish stage alone** (`relay-server/benches/kafka_publish.rs`, run by the same command;
one process, one broker): {s["count"]:,} copies of the capture's event, each with its own event
id, already parsed, normalized, scrubbed and grouped (outside the timing), published by
- **relay**: the `KafkaProducer` actors as `relay run` starts them, one per pipeline lane
  ({s.get("lanes", 1)} here, one per core) on one rdkafka producer, each fed from its lane's
  arbiter the way the lane's spool reader feeds it (at most its share of `max_in_flight` =
  {s["max_in_flight"]} envelopes not yet queued in librdkafka, at most `delivery_window_bytes` =
  {s.get("delivery_window_bytes", 0):,} bytes of envelopes not yet answered, one window for all
  lanes, `try_send` into a {s["mailbox_capacity"]}-message mailbox; the envelopes are built on
  the lane's thread too, untimed; the lanes split the messages and start together); timed:
  message build (the event's JSON serialization, {s["payload_bytes"]:,} bytes), produce,
  delivery reports, verdicts;
- **bare**: an rdkafka `BaseProducer` (same librdkafka build, same settings:
  `kafka::producer_config`) producing the same finished messages (built beforehand by
  `build_messages`), counting delivery reports.

Messages per second from the first send to the last delivery report, after one warm-up message
each; {len(relay)} repetitions, the sides alternating.

| | bare rdkafka producer | relay `KafkaProducer`s | relay / bare | target |
|---|---|---|---|---|
| messages/s (delivery reports) | {spread(bare)} | {spread(relay)} | {ratio:.2f} (per rep: {per_rep}) | ≥ 0.8: {verdict(ratio >= 0.8)} |
"""


# ------------------------------------------------------------------------------------------
def sustainable(d):
    s = load(os.path.join(d, "sustain.json"))
    k = load(os.path.join(d, "sustain.kafka.json"))
    return s["ok_per_s"], k["delivered_during"] / k["duration_s"]


def overload_rate(d):
    ok, delivered = sustainable(d)
    print(int(10 * min(ok, delivered if delivered > 0 else ok)))


def rejections(d):
    """relay_rejections_total by reason, from the /metrics scraped after the load."""
    found = {}
    try:
        with open(os.path.join(d, "metrics-after-load.txt")) as f:
            for line in f:
                m = re.match(r'relay_rejections_total\{reason="([^"]+)"\} (\S+)', line)
                if m:
                    found[m.group(1)] = int(float(m.group(2)))
    except FileNotFoundError:
        pass
    return found


def overload(out, command):
    d = os.path.join(out, "overload")
    ok_rate, delivered_rate = sustainable(d)
    sustain = min(ok_rate, delivered_rate if delivered_rate > 0 else ok_rate)
    o = load(os.path.join(d, "overload.json"))
    k = load(os.path.join(d, "kafka.json"))
    _, _, series = rss_mb(os.path.join(d, "relay.rss"))
    # The sampler starts right before the load and runs on through the drain.
    window = series[: int(round(o["elapsed_s"])) + 1]
    after = series[len(window):]
    peak = max(window, default=None)
    mean = statistics.mean(window) if window else None
    statuses = o["statuses"]
    pushback = {s: n for s, n in statuses.items() if s in ("429", "503")}
    with_ra = o.get("with_retry_after", {})
    ra_ok = all(with_ra.get(s, 0) == n for s, n in pushback.items())
    others = {s: n for s, n in statuses.items() if s not in ("200", "429", "503")}
    secs = len(window)
    third = max(1, secs // 3)
    tail = window[-third:] if window else []
    head = window[:third] if window else []
    body = f"""
Item 5 of issue 8. The relay (release build, per-IP limit off, default spool and pipeline
settings, tansu 0.6 in memory) first gets a closed-loop load (64 connections) to find the
sustainable rate: min(requests/s answered 200, events/s delivered to Kafka in the same window).
Then `bench/overload/loadgen` offers 10× that, open loop, for {o['elapsed_s']:.0f} s over 2,048
keep-alive connections (more than `limits.max_concurrent_requests` = 1,024), every request the
real capture with a fresh event id (gzip level 1). RSS is read from `/proc/PID/status` every
second. Afterwards every event id answered 200 (both phases) is looked up as a message key on
`relay.events`.

{env_block(out, command, f"one {o['elapsed_s']:.0f} s overload run after a {load(os.path.join(out, 'env.json'))['duration_s']} s closed-loop run")}
| | value | target |
|---|---|---|
| sustainable rate (200/s; delivered/s) | {ok_rate:,.0f}; {delivered_rate:,.0f} | |
| offered (10×) / actually sent | {o['offered_rate']:,.0f} req/s / {o['answered_per_s']:,.0f} req/s answered ({o['late_sends']:,} requests went out >100 ms late: the generator shares the 2 cores) | |
| answers | {", ".join(f"{s}: {n:,}" for s, n in statuses.items())}; transport errors: {o['errors'] or 'none'} | |
| 429/503 with `Retry-After` | {", ".join(f"{s}: {with_ra.get(s, 0):,} of {n:,}" for s, n in pushback.items()) or "no 429/503 answers"} | all: {verdict(bool(pushback) and ra_ok)} |
| answered 200 | {o['ok']:,} ({o['ok_per_s']:,.0f}/s), p50 {o['latency_ok']['p50_ms']:.1f} ms, p99 {o['latency_ok']['p99_ms']:.1f} ms | |
| relay RSS during the load, 1 s samples ({secs}) | peak {peak or 0:.0f} MB, mean {mean or 0:.0f} MB; first third {min(head, default=0):.0f}–{max(head, default=0):.0f} MB, last third {min(tail, default=0):.0f}–{max(tail, default=0):.0f} MB; while draining afterwards ≤ {max(after, default=0):.0f} MB | ≤ 300 MB: {verdict((peak or 1e9) <= 300)} |
| 200'd event ids found in Kafka | {k.get('ids_expected', 0) - k.get('ids_missing', 0):,} of {k.get('ids_expected', 0):,} (missing: {k.get('ids_missing', 'n/a')}) | all: {verdict(k.get('ids_missing', 1) == 0)} |

RSS rises while the 2,048 connections and up to 1,024 requests in progress fill their buffers
(and glibc's arenas grow), then levels off: compare the first and last thirds. Other answers:
{others or 'none'}. `relay_rejections_total` after the load: {", ".join(f"{k}: {v:,}" for k, v in rejections(d).items()) or "none"}
(`concurrency`: 503 for more than `limits.max_concurrent_requests` requests at once; `spool`:
503 because the spool reached `spool.max_disk_bytes` or its writer queue was full; `overloaded`: a full pipeline
stage refused an envelope already spooled, which the spool reader retried: not an answer to a
client, nothing lost).
"""
    write_section("Overload", body)


# ------------------------------------------------------------------------------------------
def micro(out, command):
    d = os.path.join(out, "micro")
    results = {}
    for rep_dir in sorted(glob.glob(os.path.join(d, "criterion-*"))):
        for bench in glob.glob(os.path.join(rep_dir, "**", "new", "benchmark.json"), recursive=True):
            info = load(bench)
            est = load(os.path.join(os.path.dirname(bench), "estimates.json"))
            results.setdefault(info["full_id"], {"t": [], "thr": info.get("throughput")})
            results[info["full_id"]]["t"].append(est["median"]["point_estimate"])

    def fmt_ns(ns):
        return f"{ns / 1000:,.2f} µs" if ns >= 1000 else f"{ns:,.0f} ns"

    rows = []
    for name in sorted(results):
        t = results[name]["t"]
        thr = results[name]["thr"]
        rate = ""
        if thr and "Bytes" in thr:
            rate = f"{thr['Bytes'] / (med(t) / 1e9) / 1e6:,.0f} MB/s"
        elif thr and "Elements" in thr:
            rate = f"{thr['Elements'] / (med(t) / 1e9):,.0f} /s"
        rows.append(f"| `{name}` | {fmt_ns(med(t))} [{fmt_ns(min(t))}–{fmt_ns(max(t))}] | {rate} |")
    env = load(os.path.join(out, "env.json"))
    body = f"""
Item 6 of issue 8: criterion benchmarks so regressions show up (no baseline; compare with the
previous numbers here). Inputs are the real SDK captures in `fixtures/sdk` (python and node)
and the fixtures' dumps, debug files and source maps.

- `relay-core/benches/envelope.rs`: `Envelope::parse` of each capture's decompressed body
  (throughput in envelope bytes);
- `relay-processing/benches/processing.rs`: `decode::decode_bounded` of the captured
  compressed bodies with the relay's 100 MiB envelope limit (throughput in decompressed
  bytes), `normalize::normalize_event` of each capture's event as the Normalizer runs it
  (the clone of the parsed event per iteration is outside the measurement), and
  `grouping::fingerprint` of each normalized event;
- `relay-processing/benches/symbolication.rs`, on `fixtures/native` and `fixtures/js`:
  `symbolicate_minidump` of each fixture dump with its modules already in the store's memory
  (`minidump_memory`: the stack walk and symbol lookups of a running relay), with a new store
  over a filled cache directory (`minidump_disk_cache`: a restarted relay, or a warm `relay
  symbolicate` without its process start), and with a new store and no cache (`minidump_cold`:
  every SymCache or Breakpad index built); `breakpad-*` cases use the `.sym` files, `native-*`
  the ELF, dSYM and PDB files through SymCaches. Then `SourceMapView::build` of the jQuery and
  React Native maps (`sourcemap_build`) and `lookup_raw` at every generated position of each
  (`sourcemap_lookup`, throughput in lookups).

Since commit c0cd92d the `bench` profile inherits the release profile's fat LTO and single
codegen unit. The first run with it (at 56e4bc0) was 1–19 % faster than the run before it (at
dbb996c) on every benchmark but `sourcemap_lookup`, which was 55–65 % slower: `lookup_raw`,
then `#[inline]`, was no longer inlined into the benchmark's loop. It is `#[inline(always)]`
now: jQuery 210 → 130 µs, React Native 1,206 → 705 µs in the run below (136 and 730 µs
before LTO).

Run alone: `CARGO_TARGET_DIR=~/.cache/relay-bench-target cargo bench -p relay-core --bench
envelope` (and `-p relay-processing --bench processing` or `--bench symbolication`);
`FIXTURES` (the SDK captures) and `FIXTURES_DIR` (the fixtures' root) override the fixture
dirs.

{env_block(out, command, "criterion run " + str(len(glob.glob(os.path.join(d, 'criterion-*')))) + " times")}
Median of criterion's per-run median, [min–max] over {len(glob.glob(os.path.join(d, 'criterion-*')))} runs
(criterion: 1 s warm-up, 3 s measurement each):

| benchmark | time per iteration | throughput |
|---|---|---|
{chr(10).join(rows)}
"""
    write_section("Micro-benchmarks", body)


EDGE_NOTES = """
Each envelope is one HTTP request to the core, answered after the core's spool append (and its
sync), so the forward path is bound by the requests in flight and the core's answer time.
`max_concurrent` measured on the same machine (`EDGE_MAX_CONCURRENT=N bench/run.sh edge`,
separate runs, load average 5-6, per-run medians): 16 → 3,676 events/s (0.13 of the core
alone, 3 repetitions), 64 → 6,117 (0.26, 2 repetitions), 128 → 6,526 (0.29, 2 repetitions).
The default is 64: most of the gain, and well below the core's default
`max_concurrent_requests_per_ip` (256), which counts every request of an edge against one
address.
"""


def edge(out, command):
    d = os.path.join(out, "edge")
    core = [load(p)["delivered_per_s"] for p in reps(os.path.join(d, "core-*.json"))]
    edge_ = [load(p)["delivered_per_s"] for p in reps(os.path.join(d, "edge-*.json"))]
    delivered = [load(p)["delivered"] for p in reps(os.path.join(d, "*-*.json"))
                 if re.search(r"/(core|edge)-\d+\.json$", p)]
    per_rep = [e / c for e, c in zip(edge_, core) if e and c]
    ratio = med(edge_) / med(core)
    rss = [rss_mb(os.path.join(d, f"edge-{i + 1}.rss"))[0] for i in range(len(edge_))]
    n = int(os.environ.get("EDGE_MESSAGES", "20000"))
    concurrent = int(os.environ.get("EDGE_MAX_CONCURRENT", "64"))
    body = f"""
Issue 20. The forward path against the core alone, the same envelopes (the capture of the
intake benchmark, each with its own event id), release builds, tansu 0.6 in memory:

- **core alone**: a relay whose spool was pre-filled with {n:,} envelopes while Kafka was
  unreachable drains it into Kafka (spool read, processing, publish, delivery reports);
- **edge → core**: an edge relay (`upstream:` a fresh core relay, zstd, `max_concurrent`
  {concurrent}) whose spool was pre-filled with {n:,} envelopes while its upstream was
  unreachable forwards them; the core answers each after its own spool append (`fsync:
  always`) and publishes them.

Both are timed the same way: the core's delivery reports from the first to the {n:,}th
(`bench/kafka/watch_delivered.py`), so the edge case includes the HTTP hop, the core's intake
and spool, and the core's processing and publish, all on the same 2 cores.

{env_block(out, command, f"{len(core)} repetitions of each, interleaved")}
| | core alone | edge → core | edge / core |
|---|---|---|---|
| events/s delivered to Kafka | {spread(core)} | {spread(edge_)} | {ratio:.2f} (per rep: {", ".join(f"{x:.2f}" for x in per_rep)}) |
| edge RSS while forwarding, peak MB | | {spread(rss, "{:.0f}")} | |

Every run delivered all {n:,} events: {"yes" if delivered and min(delivered) >= n else "**no**"}.

{EDGE_NOTES.strip()}
"""
    write_section("Edge forwarding", body)


def main():
    cmd = sys.argv[1]
    if cmd == "half-rate":
        half_rate(sys.argv[2])
    elif cmd == "overload-rate":
        overload_rate(sys.argv[2])
    elif cmd in ("intake", "kafka", "overload", "micro", "edge"):
        globals()[cmd](sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
