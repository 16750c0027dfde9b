#!/usr/bin/python3
"""Anvil vs ONNX Runtime vs OpenCV dnn on the same ONNX files, interleaved. Run by bench/run.sh
(which prepares the engines and models); see bench/README.md.

For each thread count and model, every engine's runner is started in --serve mode (load,
compile, --warmup untimed runs), then the engines take turns: each turn one engine does
--block timed runs (default 1), round-robin, the order rotating each round, until each engine
has --runs timed runs. Consecutive runs of different engines thus see the same machine load.
Statistics (min, median) are over all timed runs.
"""
import argparse
import datetime
import json
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [x for x in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                                        "amx_tile") if x in flags]
    except OSError:
        pass
    return []


def load_avg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


class Engine:
    def __init__(self, name, label):
        self.name, self.label = name, label

    def command(self, model, threads, warmup, runs, output=None):
        raise NotImplementedError


class Anvil(Engine):
    def __init__(self, binary, backend):
        super().__init__("anvil", f"Anvil ({backend})")
        self.binary, self.backend = binary, backend

    def command(self, m, threads, warmup, runs, output=None):
        return [self.binary, "bench", m["path"], "--input", m["input_path"], "--backend", self.backend,
                "--threads", str(threads), "--warmup", str(warmup), "--runs", str(runs), "--json"]

    def output_command(self, m, threads, outdir):
        return [self.binary, "run", m["path"], "--input", m["input_path"], "--backend", self.backend,
                "--threads", str(threads), "--output-dir", outdir]


class Ort(Engine):
    def __init__(self, spin):
        super().__init__("onnxruntime_spin" if spin else "onnxruntime", "ONNX Runtime" + (" (spinning)" if spin else ""))
        self.spin = spin

    def command(self, m, threads, warmup, runs, output=None):
        c = ["node", os.path.join(HERE, "ort_bench.mjs"), m["path"], m["input_path"], "--threads", str(threads),
             "--warmup", str(warmup), "--runs", str(runs)]
        if self.spin:
            c.append("--spin")
        if output:
            c += ["--output", output]
        return c


class OpenCV(Engine):
    def __init__(self, binary):
        super().__init__("opencv", "OpenCV dnn")
        self.binary = binary

    def command(self, m, threads, warmup, runs, output=None):
        c = [self.binary, m["opencv_path"], m["input_path"], "--threads", str(threads), "--warmup",
             str(warmup), "--runs", str(runs)]
        if output:
            c += ["--output", output]
        return c


def run_json(cmd, timeout):
    """Runs cmd; returns (json dict, None) or (None, error text)."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    if p.returncode != 0:
        err = (p.stderr.strip().splitlines() or ["exit code %d" % p.returncode])[-1]
        return None, f"exit {p.returncode}: {err[:300]}"
    for line in reversed(p.stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line), None
            except json.JSONDecodeError as e:
                return None, f"bad JSON: {e}"
    return None, "no JSON on stdout"


class Served:
    """An engine runner in --serve mode: loads the model and warms up once, then does timed
    runs on request ('run N' on its stdin, one JSON line back), so engines can take turns run
    by run without reloading. stderr goes to a temporary file (read for errors)."""

    def __init__(self, cmd):
        self.err = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                  bufsize=1)

    def read(self, timeout):
        ready, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not ready:
            return None, f"no answer within {timeout} s"
        line = self.p.stdout.readline()
        if not line:
            self.p.wait()
            self.err.seek(0)
            msg = (self.err.read().strip().splitlines() or [""])[-1]
            return None, f"exit {self.p.returncode}: {msg[:300]}"
        try:
            return json.loads(line), None
        except json.JSONDecodeError as e:
            return None, f"bad JSON ({e}): {line[:200]}"

    def request(self, line, timeout):
        try:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
        except BrokenPipeError:
            pass
        return self.read(timeout)

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()


def check_outputs(models, engines, anvil, threads, timeout, log):
    """Runs each engine once per model and compares its output with ONNX Runtime's:
    max |x - ort| / max |ort|. Catches benchmarking an engine that computes something else."""
    agree = {}
    with tempfile.TemporaryDirectory(prefix="anvil-bench-") as tmp:
        for key, m in models.items():
            outs = {}
            for e in engines:
                path = os.path.join(tmp, f"{key}.{e.name}.npy")
                if isinstance(e, Anvil):
                    d = os.path.join(tmp, f"{key}.anvil")
                    os.makedirs(d, exist_ok=True)
                    try:
                        p = subprocess.run(e.output_command(m, threads, d), capture_output=True, text=True,
                                           timeout=timeout)
                    except subprocess.TimeoutExpired:
                        continue
                    files = [f for f in os.listdir(d) if f.endswith(".npy")]
                    if p.returncode == 0 and len(files) == 1:
                        outs[e.name] = np.load(os.path.join(d, files[0]))
                else:
                    _, err = run_json(e.command(m, threads, 0, 1, output=path), timeout)
                    if err is None and os.path.exists(path):
                        outs[e.name] = np.load(path)
            ref = outs.get("onnxruntime")
            agree[key] = {}
            for name, y in outs.items():
                if ref is None or name == "onnxruntime":
                    continue
                if y.shape != ref.shape:
                    agree[key][name] = None
                    log(f"  check {key}: {name} output shape {y.shape} != ONNX Runtime's {ref.shape}")
                    continue
                rel = float(np.max(np.abs(y.astype(np.float64) - ref)) / max(float(np.max(np.abs(ref))), 1e-30))
                agree[key][name] = rel
                log(f"  check {key}: {name} vs ONNX Runtime max rel diff {rel:.2e}")
    return agree


def stats(times):
    return {"min_ms": min(times), "median_ms": statistics.median(times), "mean_ms": statistics.fmean(times),
            "runs": len(times)}


def fmt_ms(v):
    if v is None:
        return "–"
    return f"{v:.3g}" if v < 10 else f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def markdown(res):
    meta = res["meta"]
    engines = meta["engines"]
    lines = [f"# Benchmark: {meta['date']}", ""]
    lines.append(f"Machine: {meta['machine']}. Batch 1, fp32, latency in ms as min / median over "
                 f"{meta['rounds'] * meta['runs_per_round']} timed runs per engine, the engines taking turns "
                 f"({meta['runs_per_round']} run{'s' if meta['runs_per_round'] > 1 else ''} a turn, after "
                 f"{meta['warmup']} warm-up runs each). Anvil {meta['anvil_commit']}, "
                 f"backend `{meta['anvil_backend']}`; " + ", ".join(
                     f"{e['label']} {e.get('version', '')}".strip() for e in engines if e["name"] != "anvil") +
                 f". Load average {meta['load_before']:.2f} before, {meta['load_after']:.2f} after.")
    lines.append("")
    lines.append("Ratio = Anvil median / ONNX Runtime median (below 1: Anvil is faster). "
                 "`bash bench/run.sh` reproduces this table.")
    lines.append("")
    for t in meta["threads"]:
        lines.append(f"**{t} thread{'s' if t > 1 else ''}**")
        lines.append("")
        head = "| model | GFLOP | " + " | ".join(f"{e['label']} min / median" for e in engines) + \
               " | ratio (median) | Anvil GFLOP/s (min) |"
        lines.append(head)
        lines.append("|" + "---|" * (head.count("|") - 1))
        for key, m in res["models"].items():
            row = res["results"].get(str(t), {}).get(key, {})
            cells = []
            for e in engines:
                r = row.get(e["name"])
                if r is None:
                    cells.append("–")
                elif "error" in r:
                    cells.append("n/a" if e["name"] == "opencv" else "failed")
                else:
                    cells.append(f"{fmt_ms(r['min_ms'])} / {fmt_ms(r['median_ms'])}")
            a, o = row.get("anvil"), row.get("onnxruntime")
            ratio = (f"{a['median_ms'] / o['median_ms']:.2f}"
                     if a and o and "error" not in a and "error" not in o else "–")
            gfs = f"{m['gflop'] / (a['min_ms'] / 1000):.3g}" if a and "error" not in a else "–"
            lines.append(f"| {m['title']} | {m['gflop']:.2f} | " + " | ".join(cells) + f" | {ratio} | {gfs} |")
        ratios = [row["anvil"]["median_ms"] / row["onnxruntime"]["median_ms"]
                  for row in (res["results"].get(str(t), {}).get(k, {}) for k in res["models"])
                  if "error" not in row.get("anvil", {"error": 1}) and "error" not in row.get("onnxruntime", {"error": 1})]
        if ratios:
            gm = statistics.geometric_mean(ratios)
            worst = max(ratios)
            lines.append(f"| **geometric mean** ({len(ratios)} models) | | " + " | ".join("" for _ in engines) +
                         f" | **{gm:.2f}** (max {worst:.2f}) | |")
        lines.append("")
    notes = []
    for t, rows in res["results"].items():
        for key, row in rows.items():
            for name, r in row.items():
                if "error" in r:
                    notes.append(f"- {key}, {name}, {t} thread(s): {r['error']}")
    for key, row in res.get("agreement", {}).items():
        for name, rel in row.items():
            if rel is None or rel > 1e-3:
                notes.append(f"- {key}: {name}'s output differs from ONNX Runtime's "
                             f"(max rel diff {rel if rel is not None else 'shape mismatch'})")
    if notes:
        lines += ["Notes:", ""] + notes + [""]
    if res.get("profile"):
        lines += ["Where Anvil's time goes (`anvil bench --profile`, 1 thread, "
                  f"{meta.get('profile_runs', '')} runs; per op type: ms per run and share of the profiled total):", "",
                  "| model | profiled / mean ms | top op types |", "|---|---|---|"]
        for k, p in res["profile"].items():
            ops = ", ".join(f"{o['op']} {o['ms']:.3g} ({o['percent']:.0f}%)" for o in p["by_op"][:5])
            lines.append(f"| {res['models'][k]['title']} | {p['profile_total_ms']:.3g} / {p['mean_ms']:.3g} | {ops} |")
        lines.append("")
        lines += ["Steps on a reference kernel (`(ref)`: the op's plain-loop kernel; `(dnnl ref)`: oneDNN's own "
                  "non-JIT implementation), from the same profile:", "",
                  "| model | ref steps | ms per run | ops |", "|---|---|---|---|"]
        for k, p in res["profile"].items():
            refs = p.get("ref_steps", [])
            ops = {}
            for r in refs:
                ops[r["op"]] = ops.get(r["op"], 0) + 1
            lines.append(f"| {res['models'][k]['title']} | {len(refs)} | {sum(r['ms'] for r in refs):.3g} | " +
                         (", ".join(f"{o} x{c}" for o, c in sorted(ops.items(), key=lambda x: -x[1])) or "none") + " |")
        lines.append("")
    anvil_rows = [(t, k, r["anvil"]) for t, rows in res["results"].items() for k, r in rows.items()
                  if "anvil" in r and "error" not in r["anvil"]]
    if anvil_rows:
        lines += ["Anvil compile time and peak memory (`anvil bench --json`):", "",
                  "| model | threads | compile ms | peak RSS MB |", "|---|---|---|---|"]
        for t, k, r in anvil_rows:
            lines.append(f"| {res['models'][k]['title']} | {t} | {r.get('compile_ms', 0):.1f} | "
                         f"{r.get('peak_rss_mb', 0):.0f} |")
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--anvil", required=True, help="the anvil binary")
    ap.add_argument("--backend", default="cpu", help="Anvil backend (default: cpu)")
    ap.add_argument("--opencv", default="", help="the opencv_bench binary (empty: skip OpenCV)")
    ap.add_argument("--models-dir", default=os.path.join(HERE, "models"))
    ap.add_argument("--models", default="", help="comma-separated subset of models.json (default: all)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per engine per thread count (>= 1)")
    ap.add_argument("--block", type=int, default=1, help="timed runs an engine does in one turn (default: 1)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs at the start of each process")
    ap.add_argument("--ort-spin", action="store_true", help="also run ONNX Runtime with its spinning pool")
    ap.add_argument("--no-check", action="store_true", help="skip the output comparison")
    ap.add_argument("--profile-runs", type=int, default=5,
                    help="runs of `anvil bench --profile` per model after the timing, 1 thread (0: none)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per engine process")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--name", default="latest", help="results file stem (default: latest)")
    ap.add_argument("--anvil-commit", default="",
                    help="the commit the anvil binary was built from (default: this tree's HEAD, +dirty "
                         "when it has changes)")
    a = ap.parse_args()

    with open(os.path.join(a.models_dir, "models.json")) as f:
        index = json.load(f)
    keys = [k for k in (a.models.split(",") if a.models else index.keys()) if k]
    order = ["resnet50", "mobilenet_v2", "squeezenet1_1", "googlenet", "mnist_cnn"]
    keys.sort(key=lambda k: order.index(k) if k in order else len(order))
    models = {}
    for k in keys:
        if k not in index:
            sys.exit(f"harness: no model '{k}' in {a.models_dir}/models.json (have: {', '.join(index)})")
        m = dict(index[k])
        m["path"] = os.path.join(a.models_dir, m["onnx"])
        m["opencv_path"] = os.path.join(a.models_dir, m["opencv_onnx"])
        m["input_path"] = os.path.join(a.models_dir, k + ".input.npy")
        models[k] = m
    threads = [int(t) for t in a.threads.split(",") if t]
    per_round = max(1, min(a.block, a.runs))
    rounds = -(-a.runs // per_round)

    anvil = Anvil(a.anvil, a.backend)
    engines = [anvil, Ort(False)]
    if a.ort_spin:
        engines.append(Ort(True))
    if a.opencv:
        engines.append(OpenCV(a.opencv))

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    commit = a.anvil_commit or subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip() if not a.anvil_commit else ""
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} vCPU {cpu_name()} ({', '.join(cpu_flags())})",
            "anvil_commit": commit + ("+dirty" if dirty else ""), "anvil_backend": a.backend,
            "threads": threads, "rounds": rounds, "profile_runs": a.profile_runs, "runs_per_round": per_round, "warmup": a.warmup,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", ""), "load_before": load_avg(),
            "engines": [{"name": e.name, "label": e.label} for e in engines]}
    log(f"bench: {meta['machine']}; models {', '.join(models)}; threads {threads}; "
        f"{rounds} turns x {per_round} runs per engine; OMP_WAIT_POLICY={meta['omp_wait_policy']} GOMP_SPINCOUNT={meta['gomp_spincount']}")

    res = {"meta": meta, "models": {k: {kk: v for kk, v in m.items() if not kk.endswith("path")}
                                    for k, m in models.items()}, "results": {}}
    if not a.no_check:
        log("checking outputs against ONNX Runtime (one run each)")
        res["agreement"] = check_outputs(models, engines, anvil, threads[0], a.timeout, log)

    versions = {}
    for t in threads:
        samples = {k: {e.name: [] for e in engines} for k in models}
        extra = {k: {e.name: {} for e in engines} for k in models}
        errors = {k: {} for k in models}
        for k, m in models.items():
            procs = {}
            for e in engines:  # one at a time, so loading does not overlap another's warm-up
                p = Served(e.command(m, t, a.warmup, 1) + ["--serve"])
                j, err = p.read(a.timeout)
                if err:
                    errors[k][e.name] = err
                    log(f"  {t}T {k:14s} {e.label:22s} {err}")
                    p.close()
                    continue
                procs[e.name] = p
            for r in range(rounds):
                # Round-robin; the order rotates each round so no engine always runs first.
                for e in engines[r % len(engines):] + engines[:r % len(engines)]:
                    p = procs.get(e.name)
                    if p is None:
                        continue
                    j, err = p.request(f"run {per_round}", a.timeout)
                    if err or not j.get("times_ms"):
                        errors[k][e.name] = err or "no times in its answer"
                        log(f"  {t}T {k:14s} {e.label:22s} {errors[k][e.name]}")
                        p.close()
                        del procs[e.name]
                        continue
                    samples[k][e.name] += j["times_ms"]
            for e in engines:
                p = procs.get(e.name)
                if p is None:
                    continue
                j, err = p.request("quit", a.timeout)
                p.close()
                if err:
                    errors[k][e.name] = err
                    continue
                if j.get("version"):
                    versions[e.name] = j["version"]
                for key in ("compile_ms", "load_ms", "peak_rss_mb"):
                    if key in j:
                        extra[k][e.name][key] = j[key]
                ts = samples[k][e.name]
                log(f"  {t}T {k:14s} {e.label:22s} min {min(ts):9.3f} ms  median {statistics.median(ts):9.3f} ms"
                    f"  ({len(ts)} runs)")
        out = {}
        for k in models:
            out[k] = {}
            for e in engines:
                if e.name in errors[k]:
                    out[k][e.name] = {"error": errors[k][e.name]}
                elif samples[k][e.name]:
                    s = stats(samples[k][e.name])
                    s.update(extra[k][e.name])
                    s["times_ms"] = [round(x, 4) for x in samples[k][e.name]]
                    out[k][e.name] = s
        res["results"][str(t)] = out
    if a.profile_runs > 0:
        log("profiling Anvil (anvil bench --profile, 1 thread)")
        res["profile"] = {}
        for k, m in models.items():
            cmd = anvil.command(m, 1, 1, a.profile_runs) + ["--profile"]
            j, err = run_json(cmd, a.timeout)
            if err is None and j.get("profile"):
                res["profile"][k] = {"mean_ms": j["mean_ms"], "profile_total_ms": j["profile_total_ms"],
                                     "by_op": j["profile_by_op"], "top": j["profile"][:10],
                                     "ref_steps": [r for r in j["profile"] if "(ref)" in r["op"] or
                                                   "(dnnl ref)" in r["op"]]}
            elif err is not None:
                log(f"  profile {k}: {err}")
    meta["load_after"] = load_avg()
    for e in meta["engines"]:
        if e["name"] in versions:
            e["version"] = versions[e["name"]]

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, a.name + ".json"), "w") as f:
        json.dump(res, f, indent=1)
    md = markdown(res)
    with open(os.path.join(a.out, a.name + ".md"), "w") as f:
        f.write(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
