"""Markdown report of the minidump benchmark (see run.sh) from hyperfine's JSON exports.

    report.py <out dir> <runs> <docs/benchmarks.md> <write docs: 0|1> <mdsw version> <command>

Prints the table, writes <out>/report.md and, with write docs = 1, replaces the "## Minidumps"
section of docs/benchmarks.md (re-read right before writing; other sections are kept).
"""

import datetime
import json
import os
import platform
import re
import statistics
import sys
import textwrap
from pathlib import Path

out, runs, docs, write_docs, mdsw_version, command = sys.argv[1:7]
out = Path(out)
CASES = ["windows-x86", "linux-x86_64", "macos-x86_64", "windows-xp"]
TARGETS = {"cold": 1.0, "warm": 0.5}


def times(path, name):
    results = json.loads(path.read_text())["results"]
    return next((r["times"] for r in results if r["command"] == name), None)


def cell(xs):
    ms = [x * 1000 for x in xs]
    return f"{statistics.median(ms):.1f} [{min(ms):.1f} – {max(ms):.1f}]"


def machine():
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(
            int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
            if l.startswith("MemTotal")
        )
        mem = f"{round(mem / 2**20)} GiB"
    except (OSError, StopIteration):
        mem = "? GiB"
    return f"{model}, {os.cpu_count()} cores, {mem}, {platform.system()} {platform.release()}"


INTRO = (
    "`relay symbolicate <dump> --symbols <dir> --cache-dir <cache>` (release build) against "
    f"`minidump-stackwalk --symbols-path <dir> <dump>` ({mdsw_version}, crates.io), "
    "on the fixtures' dumps with the same Breakpad symbols (`fixtures/native/*/symbols`). "
    "Wall time of one process (start to exit, report written to /dev/null), measured with "
    "hyperfine, one warmup run, then "
    f"{runs} runs each; median [min – max] in ms. **cold**: relay's cache directory is emptied "
    "before every run, so it indexes the `.sym` files and writes its cache files; **warm**: the "
    "cache holds them. minidump-stackwalk parses the `.sym` files on every run either way "
    "(it caches nothing between processes for local symbols), so its two rows are the same "
    "command measured twice. Ratio = relay / minidump-stackwalk (lower is better); targets: "
    "cold ≤ 1.0, warm ≤ 0.5."
)
lines = [
    "## Minidumps",
    "",
    textwrap.fill(INTRO, 96, break_on_hyphens=False),
    "",
    textwrap.fill(
        f"Machine: {machine()}. Date: {datetime.date.today().isoformat()}. "
        f"Command: `{command.strip()}`.",
        96,
        break_on_hyphens=False,
    ),
    "",
    "| dump | cache | relay, ms | minidump-stackwalk, ms | ratio | target |",
    "|---|---|---|---|---|---|",
]
ratios = {"cold": [], "warm": []}
# (case, mode) -> median seconds of relay, minidump-stackwalk and the baseline relay (if timed).
medians = {}
for case in CASES:
    for mode in ("cold", "warm"):
        path = out / f"{case}.{mode}.json"
        if not path.exists():
            continue
        relay = times(path, "relay")
        mdsw = times(path, "minidump-stackwalk")
        base = times(path, "relay-baseline")
        medians[case, mode] = (
            statistics.median(relay),
            statistics.median(mdsw),
            base and statistics.median(base),
        )
        ratio = statistics.median(relay) / statistics.median(mdsw)
        ratios[mode].append(ratio)
        met = "met" if ratio <= TARGETS[mode] else "missed"
        lines.append(
            f"| {case} | {mode} | {cell(relay)} | {cell(mdsw)} | {ratio:.2f} | "
            f"≤ {TARGETS[mode]} ({met}) |"
        )
for mode in ("cold", "warm"):
    if ratios[mode]:
        geo = statistics.geometric_mean(ratios[mode])
        lines.append(f"| geometric mean | {mode} | | | {geo:.2f} | ≤ {TARGETS[mode]} |")

# BASELINE_RELAY (run.sh): the other relay binary, timed in the same hyperfine runs.
baseline_rows = []
base_ratios = {"cold": [], "warm": []}
new_ratios = {"cold": [], "warm": []}
for case in CASES:
    timed = [medians.get((case, mode)) for mode in ("cold", "warm")]
    if not all(t and t[2] for t in timed):
        continue
    cells = []
    for mode, (relay, mdsw, base) in zip(("cold", "warm"), timed):
        base_ratios[mode].append(base / mdsw)
        new_ratios[mode].append(relay / mdsw)
        cells.append(
            f"{base * 1000:.1f} ({base / mdsw:.2f}) → {relay * 1000:.1f} ({relay / mdsw:.2f})"
        )
    baseline_rows.append(f"| {case} | {cells[0]} | {cells[1]} |")
if baseline_rows:
    label = os.environ.get("BASELINE_LABEL", "the baseline binary")
    geo = [
        f"({statistics.geometric_mean(base_ratios[m]):.2f}) → "
        f"({statistics.geometric_mean(new_ratios[m]):.2f})"
        for m in ("cold", "warm")
    ]
    lines += [
        "",
        textwrap.fill(
            f"**Before → after**, in the same hyperfine runs: {label} → this build, median ms "
            "(ratio to minidump-stackwalk in the same run):",
            96,
            break_on_hyphens=False,
        ),
        "",
        "| dump | cold | warm |",
        "|---|---|---|",
        *baseline_rows,
        f"| geometric mean | {geo[0]} | {geo[1]} |",
    ]
lines.append("")
table = "\n".join(lines)
print(table)
(out / "report.md").write_text(table + "\n")

if write_docs == "1":
    docs = Path(docs)
    # Re-read right before writing: other benchmarks write their own sections.
    text = docs.read_text() if docs.exists() else "# Benchmarks\n\n"
    notes_path = Path(__file__).with_name("notes.md")
    notes = notes_path.read_text().strip() + "\n\n" if notes_path.exists() else ""
    section = table + "\n" + notes
    pattern = re.compile(r"^## Minidumps\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    docs.write_text(text.rstrip("\n") + "\n")
    print(f"wrote the Minidumps section of {docs}")
