"""`make robust`: every chapter's asserted claims, re-checked at other seeds.

Each chapter notebook reads its seed from ``ATTENTION_COURSE_SEED`` (default 0;
see ``attention_course.seed_everything``) and asserts every claim its prose
makes. This runs each chapter notebook top to bottom in a fresh kernel at seeds
1, 2 and 3, writes bench/ROBUST.md (pass/fail, time, and the headline numbers
each run glued into its prose), and exits 1 if any claim failed at any seed: a
claim that holds only for a lucky seed is not a claim.

Not part of `make test` (it takes minutes); run it when a chapter changes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The glued values worth a column: the numbers behind each chapter's headline claims.
HEADLINES = {
    "01_seq2seq_bottleneck": {"acc_short": "{:.0f}%", "acc_long": "{:.0f}%", "acc_drop": "drop {:.0f} pts",
                              "ratio_fresh": "grad ratio {:.1e}"},
    "02_soft_attention": {"plain_drop": "no-attn drop {:.0f} pts", "attn_gap": "attn gap {:.1f} pts",
                          "align_acc": "aligned {:.0f}%", "ratio_attn": "grad ratio {:.2f}"},
    "03_scoring_functions": {"grad_drop": "unscaled grad ÷{:.0f}", "speed_ratio": "additive/dot {:.0f}×",
                             "acc_worst_rule": "worst: {}", "acc_worst": "{:.1f}%",
                             "acc_best_rule": "best: {}", "acc_best": "{:.1f}%"},
    "04_hard_attention": {"acc_rf": "REINFORCE {:.0f}%", "acc_rf_nb": "no baseline {:.0f}%",
                          "acc_rf_ent": "+entropy {:.0f}%", "var_reinforce": "var {:.3g}",
                          "var_gumbel_st": "ST var {:.3g}"},
    "05_self_attention": {"exp_attn_n": "attn ~n^{:.2f}", "exp_rnn_d": "rnn ~d^{:.2f}",
                          "time_ratio_large": "rnn/attn time {:.1f}× at n=1024", "path_rnn": "rnn grad {:.0e}"},
    "06_multi_head_attention": {"one_both": "1 head both {:.2f}", "one_learned": "1 head learns {}",
                                "multi_both_min": "2-8 heads ≥{:.3f}", "h2_match_head": "match head {:.2f}",
                                "ffn_both": "1 head+FFN {:.2f}", "time_8": "8 heads {:.1f}× time"},
    "07_positional_encoding": {"beyond_learned": "past N: learned {:.2f}", "beyond_sinusoidal": "sinusoidal {:.2f}",
                               "beyond_rotary": "rotary {:.2f}", "beyond_window": "rotary+window {:.2f}",
                               "max_shift_error": "M_k error {}"},
    "08_transformer": {"post_final": "post-norm loss {:.2f}", "pre_final": "pre-norm {:.2f}",
                       "tf_acc": "transformer {:.1f}%", "rnn_acc": "rnn {:.1f}%", "best_align": "best head aligns {:.0f}%"},
    "09a_text_classification_and_summarization": {"acc_attn": "attn {:.1f}%", "acc_mean": "mean {:.1f}%",
                                                  "share_attn": "w on deciding {:.0f}%", "flip_top": "erase top flips {:.0f}%",
                                                  "rouge_f1_attention": "R1 attn {:.2f}", "rouge_f1_lead_k": "R1 lead {:.2f}"},
    "09b_matching_and_translation": {"nli_acc_attn": "NLI attn {:.0f}%", "nli_acc_alone": "alone {:.0f}%",
                                     "nli_acc_hyp": "hyp-only {:.0f}%", "mt_acc": "MT {:.0f}%", "mt_dict_acc": "dict {:.0f}%",
                                     "mt_align": "align {:.0f}%", "mt_monotone": "diagonal {:.0f}%"},
    "09c_vision_transformer": {"acc_vit": "ViT {:.0f}%", "acc_bag": "bag of patches {:.0f}%", "acc_cnn": "CNN {:.0f}%",
                               "ratio_first": "CLS on shape ×{:.1f}", "acc_top": "top-4 occluded {:.0f}%",
                               "iou_attn": "IoU {:.2f}"},
    "09d_time_series_dna_recommendation": {"ts_gain": "forecast −{:.0f}% vs seasonal naive",
                                           "dna_acc_attn": "motif {:.1f}%", "dna_in_motif": "argmax in motif {:.0f}%",
                                           "rec_hr_attn_all": "HR@10 {:.1f}%", "rec_hr_markov_all": "Markov {:.1f}%",
                                           "rec_on_trigger": "trigger argmax {:.0f}%"},
    "10_efficient_attention": {"exp_mem_std": "standard mem ~n^{:.2f}", "exp_mem_tiled": "tiled ~n^{:.2f}",
                               "mem_ratio_4096": "{:.0f}× less at 4096", "err_lin": "linear rel. error {:.2f}",
                               "cache_speedup": "KV cache {:.0f}× faster"},
    "misconceptions": {"grad_drop_scores": "unscaled grad ÷{:.0f}", "grad_onehot_pct": "one-hot {:.0f}%",
                       "mask_read_padding": "pad read {:.2f}", "chats_cats_weight": "chats→cats {:.3f}"},
}


def run_one(path: Path, seed: int) -> dict:
    """Execute ``path`` with ``ATTENTION_COURSE_SEED=seed`` in a fresh kernel; collect its glued values."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    os.environ["ATTENTION_COURSE_SEED"] = str(seed)  # the kernel inherits this process's environment
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    error = None
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except CellExecutionError as exc:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # no terminal colours in the table
        failing = [re.sub(r"^\d+\s*", "", line.split("---->", 1)[1].strip())
                   for line in text.splitlines() if "---->" in line]
        last = text.strip().splitlines()[-1]
        error = (f"{last} at `{failing[-1]}`" if failing else last)[:300]
    glued = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            record = out.get("metadata", {}).get("scrapbook", {})  # myst_nb.glue's output
            value = out.get("data", {}).get(record.get("mime_prefix", "") + "text/plain")
            if record.get("name") and value is not None:
                glued[record["name"]] = value
    return {"notebook": path.stem, "seed": seed, "seconds": time.perf_counter() - start, "error": error,
            "glued": glued}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--one", nargs=2, metavar=("NOTEBOOK", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "ROBUST.md")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter notebook and book/ notebook (not exercises)")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(Path(args.one[0]).resolve(), int(args.one[1]))))
        return 0
    notebooks = args.notebooks or sorted(p for p in [*(ROOT / "chapters").glob("*.ipynb"), *(ROOT / "book").glob("*.ipynb")]
                                         if not p.stem.endswith("_exercises"))
    rows = []
    for path in notebooks:
        for seed in args.seeds:
            out = subprocess.run([sys.executable, __file__, "--one", str(path), str(seed)],
                                 capture_output=True, text=True, cwd=ROOT)
            if out.returncode != 0:
                row = {"notebook": path.stem, "seed": seed, "seconds": float("nan"),
                       "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "crashed", "glued": {}}
            else:
                row = json.loads(out.stdout.strip().splitlines()[-1])
            status = "ok" if row["error"] is None else f"FAILED: {row['error']}"
            print(f"  {row['notebook']} seed {seed}: {status} ({row['seconds']:.0f} s)", flush=True)
            rows.append(row)

    def headline(row: dict) -> str:
        parts = []
        for key, fmt in HEADLINES.get(row["notebook"], {}).items():
            if key in row["glued"]:
                value = row["glued"][key]
                try:
                    parts.append(fmt.format(float(value)))
                except ValueError:  # a glued string, e.g. a rule's name
                    parts.append(fmt.format(str(value).strip("'\"")))
        return ", ".join(parts)

    failed = [r for r in rows if r["error"] is not None]
    lines = [
        "# Robustness: every chapter's claims at other seeds",
        "",
        f"Written by `make robust` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Each chapter notebook "
        f"ran top to bottom with `ATTENTION_COURSE_SEED` = {', '.join(map(str, args.seeds))}; its `assert` "
        "cells are the claims of its prose. The book itself is built at seed 0.",
        "",
        "| notebook | seed | claims | time (s) | headline numbers at this seed |",
        "|---|---:|:---:|---:|---|",
    ]
    for r in rows:
        claims = "hold" if r["error"] is None else f"**FAIL**: {r['error']}"
        lines.append(f"| `{r['notebook']}` | {r['seed']} | {claims} | {r['seconds']:.0f} | {headline(r)} |")
    args.out.write_text("\n".join(lines) + "\n")
    print(args.out.read_text())
    if failed:
        print(f"{len(failed)} run(s) failed: a claim does not hold at every seed.", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
