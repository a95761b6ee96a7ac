"""`make bench`: notebook budgets and our attention against PyTorch's, in one run.

Writes bench/RESULTS.md (linked from the README) with two tables:

1. For each notebook (the chapters, their exercises, and the executable appendix
   in book/): the wall time and the kernel's peak resident
   memory of executing it top to bottom in a fresh kernel, against the budget
   every chapter must meet (120 s, 1.5 GB on a 2-core CPU; Binder gives 2 GB).
2. Our `scaled_dot_product_attention` against
   `torch.nn.functional.scaled_dot_product_attention` on the CPU
   (B=8, H=8, E=64, float32, L = S from 128 to 2048), timed in the same run
   with `torch.utils.benchmark`, and their time ratio.

A benchmark, not a test: it exits 1 if a notebook is over budget, so the
number is noticed, but nothing in `make test` depends on timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 120.0
BUDGET_BYTES = 1.5 * 1024**3


def execute_one(path: Path) -> dict:
    """Execute one notebook in a fresh kernel (a child process); time it and its peak RSS."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()  # starts the kernel, runs every cell, shuts the kernel down and reaps it
    wall = time.perf_counter() - start
    # ru_maxrss of reaped children (KiB on Linux): the kernel is the only large one.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"notebook": str(path.relative_to(ROOT)), "seconds": wall, "peak_bytes": peak}


def bench_notebooks() -> list[dict]:
    rows = []
    for path in sorted((ROOT / "chapters").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.ipynb")):
        # A fresh process per notebook, so that RUSAGE_CHILDREN sees only its kernel.
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(path)], capture_output=True, text=True, cwd=ROOT
        )
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            rows.append({"notebook": str(path.relative_to(ROOT)), "seconds": float("nan"), "peak_bytes": float("nan"), "error": True})
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {row['notebook']}: {row['seconds']:.1f} s, {row['peak_bytes'] / 2**20:.0f} MiB", flush=True)
        rows.append(row)
    return rows


def bench_attention(lengths: list[int]) -> list[dict]:
    import torch
    import torch.nn.functional as F
    from torch.utils import benchmark

    from attention_course import scaled_dot_product_attention

    torch.manual_seed(0)
    B, H, E = 8, 8, 64
    rows = []
    for L in lengths:
        q, k, v = (torch.randn(B, H, L, E) for _ in range(3))
        ours_out, _ = scaled_dot_product_attention(q, k, v)
        assert torch.allclose(ours_out, F.scaled_dot_product_attention(q, k, v), atol=1e-4)
        times = {}
        for name, stmt in (("ours", "ours(q, k, v)"), ("torch", "theirs(q, k, v)")):
            timer = benchmark.Timer(
                stmt=stmt,
                globals={"ours": scaled_dot_product_attention, "theirs": F.scaled_dot_product_attention, "q": q, "k": k, "v": v},
                num_threads=torch.get_num_threads(),
            )
            times[name] = timer.blocked_autorange(min_run_time=1.0).median
        rows.append({"L": L, "ours_ms": times["ours"] * 1e3, "torch_ms": times["torch"] * 1e3})
        print(f"  L={L}: ours {times['ours'] * 1e3:.1f} ms, torch {times['torch'] * 1e3:.1f} ms", flush=True)
        del q, k, v, ours_out
    return rows


def write_report(nb_rows: list[dict], attn_rows: list[dict], out: Path) -> bool:
    import torch

    ok = True
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"{os.cpu_count()} CPUs ({platform.machine()}), Python {platform.python_version()}, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads. Numbers from one machine, one run.",
        "",
        "## Notebooks: wall time and peak memory of a fresh-kernel run",
        "",
        f"Budget per notebook: {BUDGET_SECONDS:.0f} s and {BUDGET_BYTES / 2**30:.1f} GiB peak resident memory.",
        "",
        "| notebook | wall time (s) | peak memory (MiB) | within budget |",
        "|---|---:|---:|:---:|",
    ]
    for r in nb_rows:
        within = (not r.get("error")) and r["seconds"] <= BUDGET_SECONDS and r["peak_bytes"] <= BUDGET_BYTES
        ok &= within
        status = "yes" if within else ("FAILED TO RUN" if r.get("error") else "**NO**")
        lines.append(f"| `{r['notebook']}` | {r['seconds']:.1f} | {r['peak_bytes'] / 2**20:.0f} | {status} |")
    lines += [
        "",
        "## Attention: ours against `torch.nn.functional.scaled_dot_product_attention`",
        "",
        "B=8, H=8, E=64, float32, L = S, no mask, CPU; median of `torch.utils.benchmark` runs. "
        "Ours materialises the (B, H, L, S) score matrix and returns the weights; PyTorch's fused "
        "kernel does not have to.",
        "",
        "| L | ours (ms) | torch (ms) | ours / torch |",
        "|---:|---:|---:|---:|",
    ]
    for r in attn_rows:
        lines.append(f"| {r['L']} | {r['ours_ms']:.1f} | {r['torch_ms']:.1f} | {r['ours_ms'] / r['torch_ms']:.2f} |")
    out.write_text("\n".join(lines) + "\n")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", type=Path, help="execute one notebook and print its JSON row (internal)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(execute_one(args.one.resolve())))
        return 0
    print("Notebooks:", flush=True)
    nb_rows = bench_notebooks()
    print("Attention, ours vs torch:", flush=True)
    attn_rows = bench_attention(args.lengths)
    ok = write_report(nb_rows, attn_rows, args.out)
    print(args.out.read_text())
    if not ok:
        print("A notebook is over its budget (or failed): see the table.", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
