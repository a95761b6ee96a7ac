"""`make robust`: every chapter's asserted claims, re-checked at other seeds.

Each chapter notebook reads its seed from ``ATTENTION_COURSE_SEED`` (default 0;
see ``attention_course.seed_everything``) and asserts every claim its prose
makes. This runs each chapter notebook top to bottom in a fresh kernel at each
seed of ``--seeds`` (``make robust SEEDS="1 2 3"``), as "Run All" does
(``tools/prose.py``), optionally pinned to some cores (``--cpus 0``: one core, as on
Binder), writes bench/ROBUST.md (pass/fail, time, and the headline numbers
its prose shows at that seed), and exits 1 if any claim failed at any seed: a
claim that holds only for a lucky seed is not a claim.

Not part of `make test` (it takes minutes); run it when a chapter changes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import re
import subprocess
import statistics
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import prose  # noqa: E402  (tools/prose.py: runs a notebook as "Run All" does)

# The numbers worth a column: for each notebook, a label and the {eval} expression of its
# prose that carries a headline claim (tests/test_bench.py checks that each is in the prose).
HEADLINES = {
    "01_seq2seq_bottleneck": {"short {}%": 'f"{100 * short:.0f}"', "long {}%": 'f"{100 * long:.0f}"',
                              "drop {} pts": 'f"{100 * (short - long):.0f}"', "grad ratio {}": 'f"{ratio_fresh:.1e}"',
                              "TF long {}%": 'f"{100 * tf_long:.0f}"', "TF keeps {}% of drop": 'f"{100 * tf_share:.0f}"',
                              "D=256 drop {} pts": """f'{100 * drops["D = 256"]:.0f}'""",
                              "reversal {} pts": 'f"{100 * rev_change:+.1f}"'},
    "02_soft_attention": {"no-attn drop {} pts": 'f"{100 * plain_drop:.0f}"', "attn gap {} pts": 'f"{100 * attn_gap:.1f}"',
                          "aligned {}%": 'f"{100 * align_acc:.0f}"', "grad ratio {}": """f'{ratio["attention"]:.2f}'"""},
    "03_scoring_functions": {"unscaled grad ÷{}": 'f"{grad_drop:.0f}"', "additive/dot {}×": 'f"{speed_ratio:.0f}"',
                             "worst: {}": 'worst.replace("_", " ")', "at {}%": 'f"{100 * accs[worst]:.1f}"',
                             "best: {}": 'best.replace("_", " ")', "at {}% ": 'f"{100 * accs[best]:.1f}"',
                             "dot @early {}%": """f'{100 * mean_early["dot"]:.1f}'""",
                             "dot lead {} pts": 'f"{100 * dot_lead:.1f}"', "runner-up: {}": 'runner_up.replace("_", " ")',
                             "dot−scaled @high lr {} pts": 'f"{100 * gap_hi:+.1f}"'},
    "04_hard_attention": {"REINFORCE {}": """f'{acc["REINFORCE"]:.1%}'""",
                          "no baseline {}": """f'{acc["REINFORCE, no baseline"]:.1%}'""",
                          "+entropy {}": """f'{acc["REINFORCE + entropy"]:.1%}'""",
                          "ST error {}": """f'{est["gumbel_st"]["error"]:.2f}'""",
                          "ST floor {}": """f'{est["gumbel_st"]["floor"]:.3f}'"""},
    "05_self_attention": {"attn ~T^{}": """f'{exps["attn_T"]:.2f}'""", "rnn ~D^{}": """f'{exps["rnn_D"]:.2f}'""",
                          "loop/attn time {}× at the shortest T": 'f"{t_rnn[0] / t_attn[0]:.0f}"',
                          "nn.RNN/attn {}×": 'f"{t_torch[0] / t_attn[0]:.1f}"',
                          "rnn grad {}": 'f"{g_rnn[1]:.1e}"', "hop grad {}": 'f"{g_hop:.1e}"'},
    "06_multi_head_attention": {"1 head learns {}": "QUESTION[learned]",
                                "2-8 heads ≥{}": """f'{(min(results[h]["both"] for h in HEADS if h > 1)):.3f}'""",
                                "match head {}": """f'{results[2]["on_match"].max():.2f}'""",
                                "1 head+FFN {}": """f'{with_ffn["both"]:.2f}'""", "8 heads {}× time": 'f"{time_8:.1f}"'},
    "07_positional_encoding": {"past N: learned {}": """f'{beyond["learned"]:.2f}'""",
                               "sinusoidal {}": """f'{beyond["sinusoidal"]:.2f}'""",
                               "rotary {}": """f'{beyond["rotary"]:.2f}'""",
                               "rotary+window {}": """f'{beyond["rotary + window"]:.2f}'""",
                               "ALiBi late {}": """f'{late["alibi"]:.2f}'""",
                               "ALiBi past N {}": """f'{beyond["alibi"]:.2f}'""",
                               "M_k error {}": 'f"{max_shift_error:.1e}"'},
    "08_transformer": {"post-norm loss {}": """f'{final_loss["post-norm"]:.2f}'""",
                       "pre-norm {}": """f'{final_loss["pre-norm"]:.2f}'""",
                       "transformer {}%": """f'{100 * tf_r["accuracy"]:.1f}'""",
                       "rnn {}%": """f'{100 * rnn_r["accuracy"]:.1f}'""",
                       "best head aligns {}%": 'f"{100 * head_alignment[best_head]:.0f}"'},
    "09_language_models": {"val bits {}": """f'{model_bits["val"]:.2f}'""", "bigram {}": 'f"{bi_val:.2f}"',
                           "KN {}-gram": "best_n", "at {}": 'f"{kn_best:.2f}"', "beats ≤{}-gram": "beaten",
                           "corpus words {}": """f'{share["Transformer"]:.0%}'""",
                           "greedy cycle at {}": "enters", "prev head {}": 'f"{prev_best:.2f}"',
                           "induction {}": 'f"{ind_layer2:.2f}"', "2nd copy {} nats": 'f"{second_c:.2f}"',
                           "formed by step {}": "formed_at"},
    "10a_text_classification_and_summarization": {"attn {}%": 'f"{100 * acc_attn:.1f}"', "mean {}%": 'f"{100 * acc_mean:.1f}"',
                                                  "w on deciding {}%": 'f"{100 * share_attn:.0f}"',
                                                  "erase top flips {}%": 'f"{100 * flip_top:.0f}"',
                                                  "R1 attn {}": """f'{rouge["attention"]["f1"]:.2f}'""",
                                                  "R1 lead {}": """f'{rouge["lead-k"]["f1"]:.2f}'"""},
    "10b_matching_and_translation": {"NLI attn {}%": 'f"{100 * acc_attn:.1f}"', "alone {}%": 'f"{100 * acc_alone:.1f}"',
                                     "hyp-only {}%": 'f"{100 * acc_hyp:.1f}"',
                                     "conv {}%": 'f"{100 * acc_conv:.1f}"', "conv colour {}%": 'f"{100 * colour_conv:.1f}"',
                                     "attn reach step {}": "reach_attn", "conv reach step {}": "reach_conv", "MT {}%": 'f"{100 * mt_acc:.1f}"',
                                     "dict {}%": 'f"{100 * dict_acc:.1f}"', "align {}%": 'f"{100 * mt_align:.1f}"',
                                     "diagonal {}%": 'f"{100 * mono_align:.1f}"'},
    "10c_vision_transformer": {"ViT {}": 'f"{acc_vit:.1%}"', "bag of patches {}": 'f"{acc_bag:.1%}"',
                               "CNN {}": 'f"{acc_cnn:.1%}"', "CLS on shape ×{}": 'f"{float(first.mean()):.1f}"',
                               "top-4 occluded {}%": 'f"{100 * acc_top:.1f}"', "IoU {}": 'f"{float(iou_attn.mean()):.2f}"'},
    "10d_time_series_dna_recommendation": {"forecast −{}% vs seasonal naive": 'f"{100 * (1 - ts_ratio):.0f}"',
                                           "motif {}%": 'f"{100 * dna_acc:.1f}"', "max-pool {}%": 'f"{100 * db_acc:.1f}"',
                                           "argmax in motif {}%": 'f"{100 * in_motif:.1f}"',
                                           "HR@10 {}": """f'{hr["self-attention"]["all"]:.1%}'""",
                                           "Markov {}": """f'{hr["Markov (last item)"]["all"]:.1%}'""",
                                           "GRU {}": """f'{hr["recurrent (GRU)"]["all"]:.1%}'""",
                                           "trigger argmax {}%": 'f"{100 * on_trigger:.1f}"'},
    "11_efficient_attention": {"standard mem ~n^{}": 'f"{exp_mem_std:.2f}"', "tiled ~n^{}": 'f"{exp_mem_tiled:.2f}"',
                               "{}× less at 4096": 'f"{mem_std[-1] / mem_tiled[4]:.0f}"',
                               "linear rel. error {}": 'f"{err_lin:.2f}"',
                               "KV cache {}× fewer positions": 'f"{positions_plain / positions_cached:.0f}"',
                               "token 1024: {}× faster with the cache": 'f"{t_without[-1] / t_with[-1]:.0f}"'},
    "misconceptions": {"unscaled grad ÷{}": 'f"{drop_scores:.0f}"', "one-hot {}%": """f'{100 * raw["one_hot"]:.0f}'""",
                       "pad read {}": 'f"{read:.2f}"', "chats→cats {}": 'f"{chats_row.max().item():.2f}"'},
}


def run_one(path: Path, seed: int) -> dict:
    """Run ``path`` with ``ATTENTION_COURSE_SEED=seed`` in a fresh kernel, as "Run All" does.

    Returns the first error (the claim that failed) and every number the prose shows,
    keyed by its ``{eval}`` expression (``tools/prose.py``).
    """
    os.environ["ATTENTION_COURSE_SEED"] = str(seed)  # the kernel inherits this process's environment
    start = time.perf_counter()
    cells = prose.run(path, timeout=900)
    error = None
    for cell in cells:
        if cell.errors:
            text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(cell.traceback))  # no terminal colours
            failing = [re.sub(r"^\d+\s*", "", line.split("---->", 1)[1].strip())
                       for line in text.splitlines() if "---->" in line]
            error = (f"{cell.errors[0]} at `{failing[-1]}`" if failing else cell.errors[0])[:300]
            break
    shown = {}
    for cell in cells:
        for expression, value in zip(prose.eval_expressions(cell.source), cell.values):
            shown.setdefault(expression, value)
    return {"notebook": path.stem, "seed": seed, "seconds": time.perf_counter() - start, "error": error,
            "shown": shown}


def _number(text: str) -> float:
    """The first number in a shown value ("96.8%" -> 96.8, "1e-06" -> 1e-06), or nan."""
    found = re.search(r"[-−]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", str(text))
    return float(found.group().replace("−", "-")) if found else math.nan


def spread(rows: list[dict], seeds: list[int]) -> list[str]:
    """A table of each headline number's minimum, median and maximum over the seeds."""
    out = ["", f"## Spread over seeds {', '.join(map(str, seeds))}", "",
           "Each headline number as the prose shows it, over the runs whose claims held.", "",
           "| notebook | number | min | median | max | runs |", "|---|---|---:|---:|---:|---:|"]
    for notebook in dict.fromkeys(r["notebook"] for r in rows):
        held = [r for r in rows if r["notebook"] == notebook and r["error"] is None]
        for label, expression in HEADLINES.get(notebook, {}).items():
            values = [_number(r["shown"][expression]) for r in held if expression in r["shown"]]
            values = [v for v in values if not math.isnan(v)]
            if values:
                out.append(f"| `{notebook}` | {label.format('…')} | {min(values):.3g} | "
                           f"{statistics.median(values):.3g} | {max(values):.3g} | {len(values)} |")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--cpus", help="pin each run (its kernel included) to these cores, e.g. 0 (taskset -c)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time; with --cpus, give one core per job (--jobs 2 --cpus 0,1)")
    parser.add_argument("--one", nargs=2, metavar=("NOTEBOOK", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "ROBUST.md")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter notebook and book/ notebook (not exercises)")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(Path(args.one[0]).resolve(), int(args.one[1]))))
        return 0
    notebooks = args.notebooks or sorted(p for p in [*(ROOT / "chapters").glob("*.ipynb"), *(ROOT / "book").glob("*.ipynb")]
                                         if not p.stem.endswith("_exercises"))
    cores = args.cpus.split(",") if args.cpus and args.jobs > 1 else None
    if cores is not None and len(cores) != args.jobs:
        parser.error(f"--jobs {args.jobs} with --cpus needs {args.jobs} cores, one per job, e.g. 0,1; got {args.cpus!r}")

    def run(path: Path, seed: int, job: int) -> dict:
        command = [sys.executable, __file__, "--one", str(path), str(seed)]
        if args.cpus:
            command = ["taskset", "-c", cores[job] if cores else args.cpus, *command]
        out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            row = {"notebook": path.stem, "seed": seed, "seconds": float("nan"),
                   "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "crashed", "shown": {}}
        else:
            row = json.loads(out.stdout.strip().splitlines()[-1])
        status = "ok" if row["error"] is None else f"FAILED: {row['error']}"
        print(f"  {row['notebook']} seed {seed}: {status} ({row['seconds']:.0f} s)", flush=True)
        return row

    # each job takes the next run from one queue; with --cpus 0,1 job k runs on core k only
    todo = queue.Queue()
    for path in notebooks:
        for seed in args.seeds:
            todo.put((path, seed))
    done: dict[tuple[str, int], dict] = {}

    def worker(job: int) -> None:
        while True:
            try:
                path, seed = todo.get_nowait()
            except queue.Empty:
                return
            done[(str(path), seed)] = run(path, seed, job)

    threads = [threading.Thread(target=worker, args=(job,)) for job in range(args.jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = [done[(str(path), seed)] for path in notebooks for seed in args.seeds]

    def headline(row: dict) -> str:
        return ", ".join(label.format(row["shown"][expression])
                         for label, expression in HEADLINES.get(row["notebook"], {}).items()
                         if expression in row["shown"])

    failed = [r for r in rows if r["error"] is not None]
    pinning = ""
    if args.cpus:
        pinning = (f", {args.jobs} runs at a time, each pinned to one core ({args.cpus}; taskset)" if cores
                   else f", pinned to core(s) {args.cpus} (taskset)")
    lines = [
        "# Robustness: every chapter's claims at other seeds",
        "",
        f"Written by `make robust` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Each chapter notebook "
        f"ran top to bottom with `ATTENTION_COURSE_SEED` = {', '.join(map(str, args.seeds))}"
        f"{pinning}; its `assert` "
        "cells are the claims of its prose, and the headline numbers are the ones its prose shows "
        "at that seed. The book itself is built at seed 0.",
        "",
        "| notebook | seed | claims | time (s) | headline numbers at this seed |",
        "|---|---:|:---:|---:|---|",
    ]
    for r in rows:
        claims = "hold" if r["error"] is None else f"**FAIL**: {r['error']}"
        lines.append(f"| `{r['notebook']}` | {r['seed']} | {claims} | {r['seconds']:.0f} | {headline(r)} |")
    lines += spread(rows, args.seeds)
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out.read_text())
    if failed:
        print(f"{len(failed)} run(s) failed: a claim does not hold at every seed.", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
