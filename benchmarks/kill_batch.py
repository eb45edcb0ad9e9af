"""kill -9 a running `sspcodec batch` at random moments, resume it, and check nothing is lost.

    python benchmarks/kill_batch.py [--images 100] [--kills 20] [--workers 2] [--model PATH|default]
                                    [--seed 0] [--json out.json]

Builds IMAGES small noisy test images and (unless --model is given) a random-weight SSPNet
checkpoint at 64x96 input (the mechanics under test do not depend on the weights), then runs:

1. one uninterrupted batch: the reference outputs and the reference wall time T;
2. KILLS trials, each into a fresh output folder: start the batch, SIGKILL the parent after a
   delay drawn uniformly from [0, T] (so kills land during start-up, mid-run and near the end),
   time how long its child processes outlive it, then rerun the same command to completion.

Each trial checks: the rerun exits 0; the outputs are byte-identical to the reference (same
names, same bytes); no atomic-writer temporary file and no scratch folder remain in OUT and
nothing was left in the system temporary folder (the runs get a private TMPDIR, watched); no
worker process is left running ORPHAN_S seconds after the parent died (children found by
a /proc scan, so Linux only). A worker exits within milliseconds of its parent's death once its
code runs (parent-death signal); one killed while still importing torch exits as soon as the
import ends, so the time children linger is reported too. Prints one line per trial and a summary.

The reference and every trial must run the same code: run it on a tree nobody edits meanwhile
(e.g. a copy, with PYTHONPATH pointing at it), or an encoder change shows up as mismatches.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sspcodec.bench.batchchecks import alive, children, leftovers, visible_outputs
from sspcodec.bench.models import tiny_model

ORPHAN_S = 60.0


def make_inputs(folder: Path, n: int, seed: int) -> None:
    """n noisy 48x64 images with a bright square each (some JPEG work, fast to encode)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for k in range(n):
        img = rng.normal(128, 40, (48, 64, 3))
        y, x = rng.integers(0, 32), rng.integers(0, 48)
        img[y : y + 16, x : x + 16] = 240
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"im{k:03d}.png")


def batch_cmd(src: Path, dst: Path, model: str, workers: int) -> list[str]:
    return [sys.executable, "-m", "sspcodec.cli", "batch", str(src), str(dst), "--model", model,
            "--quality", "70", "--workers", str(workers), "--device", "cpu"]


def trial(k: int, src: Path, work: Path, model: str, workers: int, delay: float, reference: dict,
          rng: random.Random) -> dict:
    """One kill at *delay* seconds, then a rerun to completion; the checks as a row. A run that
    finishes before its kill (runs vary in speed) is started again with a delay drawn within its
    own duration, so every trial is a real kill."""
    dst = work / f"trial{k:02d}"
    env = {**os.environ, "TMPDIR": str(work / "tmp")}  # anything written to the temp folder shows here
    attempts, killed_after = 0, delay
    while attempts < 5:
        attempts, killed_after = attempts + 1, delay
        shutil.rmtree(dst, ignore_errors=True)
        proc = subprocess.Popen(batch_cmd(src, dst, model, workers), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
        seen: set[int] = set()
        t0 = time.monotonic()
        while time.monotonic() - t0 < delay and proc.poll() is None:
            seen.update(children(proc.pid))  # worker processes come and go; remember every one
            time.sleep(0.02)
        seen.update(children(proc.pid))
        finished_first = proc.poll() is not None
        if not finished_first:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
        delay = rng.uniform(0, time.monotonic() - t0)
    done_at_kill = len(visible_outputs(dst)) if dst.exists() else 0
    temp_at_kill = len(leftovers(dst)) if dst.exists() else 0
    killed_at = time.monotonic()
    while any(alive(p) for p in seen) and time.monotonic() - killed_at < ORPHAN_S:
        time.sleep(0.05)
    linger = time.monotonic() - killed_at
    orphans = [p for p in seen if alive(p)]
    for p in orphans:  # leave the machine clean whatever the verdict
        os.kill(p, signal.SIGKILL)
    rerun = subprocess.run(batch_cmd(src, dst, model, workers), capture_output=True, text=True, env=env)
    in_tmp = sorted(p.name for p in (work / "tmp").iterdir())
    for p in (work / "tmp").iterdir():
        shutil.rmtree(p, ignore_errors=True)
    got = visible_outputs(dst)
    mismatched = sorted(n for n in reference if got.get(n) != reference[n])
    extra = sorted(set(got) - set(reference))
    return {
        "trial": k, "attempts": attempts, "kill_after_s": round(killed_after, 2),
        "finished_before_kill": finished_first,
        "outputs_at_kill": done_at_kill, "temp_files_at_kill": temp_at_kill, "rerun_exit": rerun.returncode,
        "mismatched": mismatched, "extra": extra, "leftovers_after_rerun": leftovers(dst),
        "left_in_tmpdir": in_tmp, "orphans": len(orphans), "workers_seen": len(seen),
        "children_linger_s": round(linger, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model", help="checkpoint or zoo name (default: a random-weight tiny checkpoint)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the rows and summary here")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    args = ap.parse_args()
    if not Path("/proc/self/stat").exists():
        sys.exit("this benchmark finds worker processes through /proc (Linux)")

    work = Path(tempfile.mkdtemp(prefix="kill-batch-"))
    (work / "tmp").mkdir()
    failed = 1
    try:
        src = work / "in"
        make_inputs(src, args.images, args.seed)
        model = args.model or str(tiny_model(work / "tiny.safetensors", (64, 96)))
        t0 = time.monotonic()
        ref = subprocess.run(batch_cmd(src, work / "reference", model, args.workers), capture_output=True, text=True)
        ref_s = time.monotonic() - t0
        if ref.returncode != 0:
            sys.exit(f"the reference run failed:\n{ref.stdout}\n{ref.stderr}")
        reference = visible_outputs(work / "reference")
        print(f"reference: {len(reference)} outputs in {ref_s:.1f} s ({args.workers} workers)")
        rng = random.Random(args.seed)
        rows = []
        for k in range(args.kills):
            row = trial(k, src, work, model, args.workers, rng.uniform(0, ref_s), reference, rng)
            rows.append(row)
            ok = (row["rerun_exit"] == 0 and not row["mismatched"] and not row["extra"]
                  and not row["leftovers_after_rerun"] and not row["left_in_tmpdir"] and not row["orphans"])
            print(f"trial {k:2d}: kill at {row['kill_after_s']:6.2f} s, {row['outputs_at_kill']:3d} done, "
                  f"{row['temp_files_at_kill']} temp at kill, {row['workers_seen']} children seen, "
                  f"gone after {row['children_linger_s']:.2f} s, orphans {row['orphans']}, "
                  f"rerun exit {row['rerun_exit']}, "
                  f"{len(row['mismatched'])} mismatched -> {'ok' if ok else 'FAIL'}")
            shutil.rmtree(work / f"trial{k:02d}", ignore_errors=True)
        summary = {
            "images": args.images, "kills": args.kills, "workers": args.workers, "reference_s": round(ref_s, 1),
            "killed_mid_run": sum(not r["finished_before_kill"] for r in rows),
            "killed_before_first_output": sum(r["outputs_at_kill"] == 0 for r in rows),
            "killed_with_all_outputs_written": sum(r["outputs_at_kill"] == args.images for r in rows),
            "reruns_failed": sum(r["rerun_exit"] != 0 for r in rows),
            "outputs_not_identical": sum(len(r["mismatched"]) + len(r["extra"]) for r in rows),
            "temp_files_left": sum(len(r["leftovers_after_rerun"]) for r in rows),
            "left_in_tmpdir": sum(len(r["left_in_tmpdir"]) for r in rows),
            "orphaned_processes": sum(r["orphans"] for r in rows),
            "max_children_linger_s": max((r["children_linger_s"] for r in rows), default=0.0),
        }
        print("summary: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
        if args.json:
            args.json.write_text(json.dumps({"summary": summary, "trials": rows}, indent=1))
        failed = summary["reruns_failed"] + summary["outputs_not_identical"] + summary["temp_files_left"] \
            + summary["left_in_tmpdir"] + summary["orphaned_processes"]
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
