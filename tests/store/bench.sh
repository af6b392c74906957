#!/usr/bin/env bash
# `make bench` part: the sessions store with 10,000 generated sessions. Ours
# (`medgemma-desk bench --sessions`, through the store's API) next to the same
# SQL run directly by Python's sqlite3 module on the same file in the same
# run: the floor any SQLite app could reach. Then the same generated store
# encrypted (SQLCipher, sealed files: `--encrypted`), to show what encryption
# at rest costs (goal: within 1.5x of the plain store). Prints a Markdown section.
#   tests/store/bench.sh BIN [SESSIONS] [REPETITIONS]
set -euo pipefail
bin=$1 n=${2:-10000} reps=${3:-5}
dir=$(mktemp -d) enc=$(mktemp -d)
trap 'rm -rf "$dir" "$enc"' EXIT
echo "==> MedGemma Desk: store with $n sessions, $reps runs per query" >&2
ours=$("$bin" bench --sessions "$n" --repetitions "$reps" --store-dir "$dir" --json | tail -1)
echo "==> MedGemma Desk: the same, encrypted" >&2
encrypted=$("$bin" bench --sessions "$n" --repetitions "$reps" --store-dir "$enc" --encrypted --json | tail -1)
python3 - "$ours" "$reps" "$encrypted" <<'PY'
import json, sqlite3, statistics, sys, time
ours, reps, enc = json.loads(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
enc_ms = {row["what"] + "|" + str(row.get("query")): row["median_ms"] for row in enc["rows"]}
db = sqlite3.connect(ours["store"])
cols = "id, title, created_at, updated_at, status"
def fts(q):
    return " ".join('"%s"*' % w for w in q.split())
def run(q, limit):
    if not q:
        rows = db.execute(f"SELECT {cols} FROM sessions ORDER BY created_at DESC, id DESC LIMIT ?", (limit,)).fetchall()
        db.execute("SELECT count(*) FROM sessions").fetchone()
        return rows
    m = "SELECT DISTINCT session_id FROM search WHERE search MATCH ?"
    rows = db.execute(f"SELECT {cols} FROM sessions WHERE id IN ({m}) ORDER BY created_at DESC, id DESC LIMIT ?", (fts(q), limit)).fetchall()
    db.execute(f"SELECT count(*) FROM ({m})", (fts(q),)).fetchone()
    return rows
def timed(f):
    runs = []
    for _ in range(reps):
        t = time.perf_counter(); f(); runs.append((time.perf_counter() - t) * 1000)
    return statistics.median(runs)
print(f"### Sessions store, {ours['sessions']:,} sessions\n")
print(f"Median of {reps} runs, in-process. Each session has notes, an AI draft (~1 KB) and a report; the store is {ours['store_bytes'] / 1e6:.0f} MB "
      f"(generated in {ours['generate_s']:.1f} s). Goal: list and search under 50 ms. Peer: the same SQL through Python's sqlite3 "
      f"(SQLite {sqlite3.sqlite_version}) on the same file. Encrypted: the same sessions generated into an encrypted store "
      f"(SQLCipher pages, {enc['store_bytes'] / 1e6:.0f} MB, generated in {enc['generate_s']:.1f} s); goal within 1.5× of plain.\n")
print("| what | query | matches | MedGemma Desk (ms) | Python sqlite3, same SQL (ms) | encrypted store (ms) | encrypted / plain |")
print("|---|---|---:|---:|---:|---:|---:|")
for row in ours["rows"]:
    q = row.get("query")
    if q is None:
        peer = "—"
    else:
        peer = f"{timed(lambda: run(q, 200)):.2f}"
    matched = row.get("matched", "—")
    e = enc_ms.get(row["what"] + "|" + str(q))
    ratio = f"{e / row['median_ms']:.2f}×" if e is not None and row["median_ms"] > 0 else "—"
    print(f"| {row['what']} | {q if q else ''} | {matched} | {row['median_ms']:.2f} | {peer} | {e:.2f} | {ratio} |")
PY
