"""Does a larger teacher, distilled into `default`, transfer better to a data set it never saw?

Issue 10, item 5, sized for one short GPU lease (it runs on a CPU too, slowly; --quick checks
the plumbing). Three folds: trained on the first --data set (tested on the second), the
reverse, and both (the shipped model's same-set split, for shipping). Runs, all `sspnet train`:

  shipped   the shipped recipe (10 epochs, stem frozen, 20% greyscale): the control
  long      default config, whole trunk, colour jitter, more epochs
  teacher   config `teacher` (10.9 M parameters, 1.5x canvas), the `long` recipe
  distil    the `long` recipe with half of each target's mass from its fold's teacher

Phase 1 trains shipped, long and teacher of every fold in parallel; phase 2 the distilled
students. Every run has a time limit (no new epoch after it), so the study ends on schedule.
Then every left-out-set model is scored with `sspnet eval` twice: as trained (the network
alone) and with the shipped model's inference settings (output blur, centre bias, test-time
views). The rule, fixed before the run: the student recipe with the best mean left-out CC
under the shipped settings wins; its weights (fp16) are written to OUT/pick/.

    python benchmarks/distil_study.py --data small/osie --data small/eyecrowd --out OUT \\
        --backbone-weights mnv2.pth --phase-seconds 160 120

A replicate with new students and the same teachers: add `--seed 1 --teachers-from OUT` (new --out).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's packages, installed or not

from sspcodec.bench.studies import LONG, SHIPPED, eval_cmd, eval_split, folds, run_parallel, train_cmd
from sspcodec.bench.study_scores import read_scores
from sspnet.training.experiments import read_saliency_items

STUDENTS = ("shipped", "long", "distil")


def with_settings(checkpoint: Path, settings: dict[str, dict], out_dir: Path) -> dict[str, Path]:
    """The checkpoint once per named set of inference settings (OUT_DIR/eval-<name>.safetensors,
    weights unchanged), for `sspnet eval`."""
    from sspnet.zoo import model_from_checkpoint, save_checkpoint

    model = model_from_checkpoint(checkpoint)
    base, info = model.config, getattr(model, "info", {})
    paths = {}
    for name, over in settings.items():
        model.config = replace(base, **over)
        paths[name] = save_checkpoint(model, out_dir / f"eval-{name}.safetensors", info, half=False)
    return paths


def shipped_settings() -> dict:
    """The zoo's `default` inference settings and the output blur stored in its weights."""
    from sspnet.zoo import WEIGHTS_DIR, ZOO, read_checkpoint

    filename, _, overrides = ZOO["default"]
    stored, _, _ = read_checkpoint(WEIGHTS_DIR / filename)
    return {**overrides, "output_blur": stored.output_blur}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, action="append", required=True, help="Exactly two data sets.")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--backbone-weights", type=Path, default=None)
    ap.add_argument("--phase-seconds", type=float, nargs=2, default=(160.0, 120.0),
                    help="Time limits (wall s) of phase 1 and 2 runs: no new epoch after them, killed 45 s later.")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--distil", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0,
                    help="Seed of every run (also redraws the validation split): a replicate of the study.")
    ap.add_argument("--teachers-from", type=Path, default=None,
                    help="Reuse the teachers of an earlier study's OUT (OUT/<fold>/teacher) instead of training them.")
    ap.add_argument("--quick", action="store_true",
                    help="One epoch of two steps per run, 8 test images: checks the plumbing "
                         "(on a CPU: OMP_NUM_THREADS=1).")
    args = ap.parse_args()
    if len(args.data) != 2:
        ap.error("give exactly two --data sets")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results: dict = {"phase_seconds": list(args.phase_seconds), "distil": args.distil, "quick": args.quick}

    def save() -> None:
        (out / "results.json").write_text(json.dumps(results, indent=1))

    from sspnet.data import precompute_saliency_maps

    items = read_saliency_items(args.data)
    precompute_saliency_maps(items, progress=False)  # workers then only read
    fs = folds(args.data)
    s1, s2 = args.phase_seconds
    jobs = {}
    for f, fold in fs.items():
        if args.teachers_from is None:
            jobs[f"{f}.teacher"] = train_cmd(fold, out / f / "teacher", LONG, args, "teacher", seconds=s1)
        jobs[f"{f}.long"] = train_cmd(fold, out / f / "long", LONG, args, seconds=s1)
        if fold["test"]:
            jobs[f"{f}.shipped"] = train_cmd(fold, out / f / "shipped", SHIPPED, args, seconds=s1)
    results["phase1"] = run_parallel(jobs, out / "logs", time.time() + s1 + 45)
    results["phase1_s"] = round(time.time() - t0, 1)
    save()
    jobs = {}
    for f, fold in fs.items():
        teacher = (args.teachers_from or out) / f / "teacher" / "best.safetensors"
        if teacher.is_file():
            jobs[f"{f}.distil"] = train_cmd(fold, out / f / "distil", LONG, args, teacher=teacher, seconds=s2)
    results["phase2"] = run_parallel(jobs, out / "logs", time.time() + s2 + 45)
    results["phase2_s"] = round(time.time() - t0, 1)
    save()

    settings = {"net": {}, "shipped": shipped_settings()}
    jobs, where = {}, {}
    for f, fold in fs.items():
        if not fold["test"]:
            continue
        test_keys = [f"{i.dataset}/{i.name}" for i in items if i.dataset == fold["test"]][: 8 if args.quick else None]
        split = None  # every run of a fold has the same split: written once
        for run in (*STUDENTS, "teacher"):
            ckpt = out / f / run / "best.safetensors"
            if not ckpt.is_file():
                continue
            split = split or eval_split(out / f / run, test_keys, out / f / "eval_split.json")
            for s, model in with_settings(ckpt, settings, out / f / run).items():
                name = f"{f}.{run}.{s}"
                where[name] = out / f / run / f"eval-{s}"
                jobs[f"eval.{name}"] = eval_cmd(model, split, where[name], args.data, 2)
    results["eval_rc"] = run_parallel(jobs, out / "logs", time.time() + 150)
    results["scores"] = {name: read_scores(d) for name, d in where.items()}
    results["total_s"] = round(time.time() - t0, 1)
    summarise(out, fs, results)
    save()
    print(json.dumps({k: results.get(k) for k in ("mean_lodo_cc_shipped_settings", "pick", "total_s")}, indent=1))
    print(json.dumps(results.get("scores"), indent=1))


def summarise(out: Path, fs: dict[str, dict], results: dict) -> None:
    """Training histories, the rule's means, the pick and its weights (fp16) in OUT/pick."""
    results["history"] = {}
    for f in fs:
        for run in (*STUDENTS, "teacher"):
            h = out / f / run / "history.json"
            if h.is_file():
                results["history"][f"{f}.{run}"] = json.loads(h.read_text())
    lodo = [f for f, fold in fs.items() if fold["test"]]
    means = {}
    for run in STUDENTS:
        ccs = [(results["scores"].get(f"{f}.{run}.shipped") or {}).get("cc") for f in lodo]
        if all(c is not None for c in ccs):
            means[run] = sum(ccs) / len(ccs)
    results["mean_lodo_cc_shipped_settings"] = means
    if means:
        pick = max(means, key=means.get)
        results["pick"] = pick
        from sspnet.zoo import model_from_checkpoint, save_checkpoint

        (out / "pick").mkdir(exist_ok=True)
        for f in fs:
            ckpt = out / f / pick / "best.safetensors"
            if ckpt.is_file():
                model = model_from_checkpoint(ckpt)
                save_checkpoint(model, out / "pick" / f"{f}.{pick}.safetensors", getattr(model, "info", {}), half=True)


if __name__ == "__main__":
    main()
