#!/usr/bin/env python3
"""Anvil's cuda backend vs PyTorch on the GPU, same networks, one interleaved run.

    python3 bench/torch_cuda_bench.py [--anvil PATH] [--models resnet50,mobilenet_v2,...]
        [--out DIR] [--work DIR] [--batch 64] [--runs 200] [--block 10] [--warmup 20]
        [--in-flight N] [--anvil-arg=--foo ...] [--no-check]

Runs on the GPU machine (scripts/gpu_suite.sh bench; see bench/README.md, "GPU"), with the
PyTorch there (CUDA build).

Models: ResNet-50, MobileNetV2, SqueezeNet 1.1, GoogLeNet from torchvision, built by
python/export_bench_models.py's build() (random weights from torch.manual_seed(0), eval mode,
GoogLeNet's batch norms rescaled), so PyTorch and Anvil run the same network.

PyTorch: fp16 weights and activations, channels_last, torch.backends.cudnn.benchmark=True, the
forward pass captured once into a CUDA graph (torch.cuda.CUDAGraph) and replayed:
  - batch 1 latency: per replay, CUDA events around g.replay() ("device" ms) and the host clock
    around input copy (pinned fp32 host -> fp16 device) + replay + output copy back +
    synchronize ("wall" ms, what one Session::run of Anvil does);
  - batch B throughput (default 64): --block back-to-back replays timed with CUDA events
    (images/s = B x replays / time; input already on the device); the wall figure adds the
    copies and a synchronize to every replay.
Anvil: the same model exported to ONNX by this script (fp32 weights, opset 17, dynamic batch
axis), run with `anvil bench MODEL.onnx --backend cuda --precision fp16 --input X.npy
[--shape input=B,3,224,224] --serve`: per run its wall time (Session::run: copies in, the run,
copies out) and the backend's device time (CUDA events; the report's device_ms). At batch B,
where the CLI has --in-flight, one more `anvil bench ... --runs N --in-flight K --json` run
(Session::submit/wait, K runs in flight) gives the pipelined throughput (images_per_s).

Interleaved: for each model and batch size, Anvil's runner loads, compiles and warms up once,
then PyTorch and Anvil take turns, --block runs a turn, the order alternating, until each has
--runs runs (batch 1) or --batch-runs runs (batch B). Medians over all timed runs.
Before timing, each engine's output on the seeded input is compared with PyTorch fp32's
(max |x - ref| / max |ref|).

Writes OUT/gpu_latest.md (the table) and OUT/gpu_latest.json (every timed run, versions, GPU).
"""
import argparse
import copy
import datetime
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))
import export_bench_models as ebm  # noqa: E402

DEFAULT_MODELS = ["resnet50", "mobilenet_v2", "squeezenet1_1", "googlenet"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def median(v):
    return statistics.median(v) if v else None


# ---------------------------------------------------------------------------------------------
# PyTorch


class TorchRunner:
    """One model at one batch size: fp16, channels_last, captured into a CUDA graph."""

    def __init__(self, model16, x32, warmup):
        self.batch = x32.shape[0]
        dev = torch.device("cuda")
        self.static_x = torch.empty(x32.shape, dtype=torch.float16, device=dev).to(
            memory_format=torch.channels_last)
        self.static_x.copy_(x32.to(dev))
        self.host_x = x32.contiguous().pin_memory()
        with torch.no_grad():
            # Warm-up (cudnn.benchmark picks its algorithms here) on a side stream, as
            # torch.cuda.graphs asks before capture.
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(3):
                    model16(self.static_x)
            torch.cuda.current_stream().wait_stream(s)
            torch.cuda.synchronize()
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.static_y = model16(self.static_x)
        self.host_y = torch.empty(self.static_y.shape, dtype=torch.float32).pin_memory()
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)
        for _ in range(warmup):
            self.graph.replay()
        torch.cuda.synchronize()

    def output(self, x32):
        self.static_x.copy_(x32.to("cuda"))
        self.graph.replay()
        torch.cuda.synchronize()
        return self.static_y.float().cpu().numpy()

    def latency(self, n):
        """n single replays: ([device ms], [wall ms]); wall = copy in + replay + copy out."""
        dev, wall = [], []
        for _ in range(n):
            t0 = time.perf_counter()
            self.static_x.copy_(self.host_x, non_blocking=True)
            self.start.record()
            self.graph.replay()
            self.end.record()
            self.host_y.copy_(self.static_y, non_blocking=True)
            torch.cuda.synchronize()
            wall.append((time.perf_counter() - t0) * 1e3)
            dev.append(self.start.elapsed_time(self.end))
        return dev, wall

    def throughput(self, n):
        """n back-to-back replays (input on the device): device ms per replay (their mean)."""
        self.start.record()
        for _ in range(n):
            self.graph.replay()
        self.end.record()
        self.end.synchronize()
        return [self.start.elapsed_time(self.end) / n]


# ---------------------------------------------------------------------------------------------
# Anvil


class AnvilServe:
    """`anvil bench ... --serve`: loads, compiles and warms up once; 'run N' does N timed runs."""

    def __init__(self, cmd, timeout):
        self.cmd = cmd
        self.timeout = timeout
        self.err = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                  text=True, bufsize=1)
        self.ready, self.error = self._read()

    def _read(self):
        ready, _, _ = select.select([self.p.stdout], [], [], self.timeout)
        if not ready:
            self.p.kill()
            return None, f"no answer within {self.timeout} s"
        line = self.p.stdout.readline()
        if not line:
            self.p.wait()
            self.err.seek(0)
            msg = error_line(self.err.read(), self.p.returncode)
            return None, f"exit {self.p.returncode}: {msg[:400]}"
        try:
            return json.loads(line), None
        except json.JSONDecodeError as e:
            return None, f"bad JSON ({e}): {line[:200]}"

    def request(self, line):
        if self.error:
            return None
        try:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
        except BrokenPipeError:
            pass
        j, self.error = self._read()
        return j

    def close(self):
        final = self.request("quit") if not self.error else None
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
                self.p.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()
        self.err.close()
        return final


def anvil_flags(anvil, command="bench"):
    """The options `anvil COMMAND --help` lists (the CLI grows: --precision, --in-flight, ...)."""
    try:
        h = subprocess.run([anvil, command, "--help"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", h))


def run_json(cmd, timeout):
    """Runs cmd; returns (the last JSON line of its stdout, None) or (None, error text)."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    if p.returncode != 0:
        return None, f"exit {p.returncode}: " + error_line(p.stderr, p.returncode)
    for line in reversed(p.stdout.strip().splitlines()):
        if line.strip().startswith("{"):
            try:
                return json.loads(line), None
            except json.JSONDecodeError as e:
                return None, f"bad JSON: {e}"
    return None, "no JSON on stdout"


def device_times(j):
    """Per-run device times from one `run N` answer, if the CLI reports them."""
    for k in ("device_times_ms", "device_ms", "times_device_ms", "gpu_times_ms"):
        v = j.get(k)
        if isinstance(v, list) and v:
            return [float(x) for x in v]
    return []


def throughput_of(j):
    """Images per second or runs per second from a report, if the CLI gives one."""
    for k, v in j.items():
        if isinstance(v, (int, float)) and ("throughput" in k or k.endswith("per_s")):
            return k, float(v)
    return None, None


# ---------------------------------------------------------------------------------------------


def rel_diff(y, ref):
    y = np.asarray(y, dtype=np.float64).reshape(ref.shape)
    return float(np.max(np.abs(y - ref)) / max(float(np.max(np.abs(ref))), 1e-30))


def error_line(stderr, rc):
    lines = stderr.strip().splitlines()
    return (next((x for x in lines if "error" in x.lower()), None) or (lines or [f"exit {rc}"])[-1])[:300]


def anvil_output(anvil, onnx_path, x_path, shape_arg, base_args, tmp, timeout):
    d = tempfile.mkdtemp(dir=tmp)
    cmd = [anvil, "run", onnx_path, "--input", x_path, "--output-dir", d] + shape_arg
    cmd += [a for a in base_args if a != "--serve"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "anvil run timed out"
    if p.returncode != 0:
        return None, error_line(p.stderr, p.returncode)
    files = sorted(f for f in os.listdir(d) if f.endswith(".npy"))
    if len(files) != 1:
        return None, f"anvil run wrote {len(files)} .npy files"
    return np.load(os.path.join(d, files[0])), None


def run_config(name, model16, ref_model, x32, anvil, flags, a, work, batch, runs, label):
    """One model at one batch size, PyTorch and Anvil interleaved. Returns a result dict."""
    res = {"batch": batch}
    onnx_path = os.path.join(work, name + ".onnx")
    x_path = os.path.join(work, f"{name}.b{batch}.input.npy")
    np.save(x_path, x32.numpy())
    with torch.no_grad():
        ref = ref_model(x32.cuda()).double().cpu().numpy()

    t = TorchRunner(model16, x32, a.warmup)
    res["torch_check_rel"] = rel_diff(t.output(x32), ref)

    srv = None
    anvil_args = []
    shape_arg = ["--shape", "input=" + ",".join(str(d) for d in x32.shape)] if batch != 1 else []
    if anvil:
        prec = ["--precision", a.precision] if "--precision" in flags else []
        if not prec:
            res.setdefault("notes", []).append("anvil bench has no --precision: ran at its default precision")
        anvil_args = ["--backend", "cuda"] + prec + a.anvil_arg
        if not a.no_check:
            run_prec = prec if "--precision" in a.run_flags else []
            if prec and not run_prec:
                res.setdefault("notes", []).append("anvil run has no --precision: output checked at fp32")
            y, err = anvil_output(anvil, onnx_path, x_path, shape_arg, ["--backend", "cuda"] + run_prec + a.anvil_arg,
                                  work, a.timeout)
            if err:
                res["anvil_check_error"] = err
                log(f"  {label} anvil run: {err}")
            else:
                res["anvil_check_rel"] = rel_diff(y, ref)
        cmd = [anvil, "bench", onnx_path, "--input", x_path] + shape_arg + anvil_args + [
            "--warmup", str(a.warmup), "--runs", "1", "--json", "--serve"]
        res["anvil_cmd"] = " ".join(os.path.basename(c) if c == anvil else c for c in cmd)
        t0 = time.perf_counter()
        srv = AnvilServe(cmd, a.timeout)
        res["anvil_start_s"] = round(time.perf_counter() - t0, 2)
        if srv.error:
            res["anvil_error"] = srv.error
            log(f"  {label} anvil: {srv.error}")
            srv = None
        else:
            res["anvil_ready"] = srv.ready

    tdev, twall, adev, awall = [], [], [], []
    rounds = -(-runs // a.block)
    for r in range(rounds):
        order = ("torch", "anvil") if r % 2 == 0 else ("anvil", "torch")
        for who in order:
            if who == "torch":
                if batch == 1:
                    d, w = t.latency(a.block)
                    tdev += d
                    twall += w
                else:
                    tdev += t.throughput(a.block)
                    twall += t.latency(1)[1]
            elif srv is not None:
                j = srv.request(f"run {a.block}")
                if j is None or not j.get("times_ms"):
                    res["anvil_error"] = srv.error or "no times in its answer"
                    log(f"  {label} anvil: {res['anvil_error']}")
                    srv.close()
                    srv = None
                    continue
                awall += [float(x) for x in j["times_ms"]]
                adev += device_times(j)
    if srv is not None:
        final = srv.close()
        if final:
            res["anvil_report"] = {k: v for k, v in final.items() if k not in ("times_ms",)}
    # The pipelined phase of `anvil bench --in-flight N` (Session::submit/wait, N runs in
    # flight) is not part of --serve: one run of its own, right after the interleaved runs.
    pipe_cmd = None
    if anvil and batch != 1 and a.in_flight > 1 and "--in-flight" in flags and "anvil_error" not in res:
        pipe_cmd = [anvil, "bench", onnx_path, "--input", x_path] + shape_arg + anvil_args + [
            "--warmup", str(a.warmup), "--runs", str(runs), "--in-flight", str(a.in_flight), "--json"]
        res["anvil_pipelined_cmd"] = " ".join(os.path.basename(c) if c == anvil else c for c in pipe_cmd)
        j, err = run_json(pipe_cmd, a.timeout)
        if err:
            res["anvil_pipelined_error"] = err
            log(f"  {label} anvil --in-flight {a.in_flight}: {err}")
        else:
            res["anvil_pipelined"] = {k: v for k, v in j.items() if k != "times_ms"}
    res["torch_device_ms"] = [round(x, 5) for x in tdev]
    res["torch_wall_ms"] = [round(x, 5) for x in twall]
    res["anvil_wall_ms"] = [round(x, 5) for x in awall]
    res["anvil_device_ms"] = [round(x, 5) for x in adev]
    res["torch_device_median_ms"] = median(tdev)
    res["torch_wall_median_ms"] = median(twall)
    res["anvil_wall_median_ms"] = median(awall)
    res["anvil_device_median_ms"] = median(adev)
    dev = res.get("anvil_report", {}).get("device_ms")
    if res["anvil_device_median_ms"] is None and isinstance(dev, dict) and dev.get("median") is not None:
        res["anvil_device_median_ms"] = float(dev["median"])  # the backend's own (cuda: CUDA events)
    if batch != 1:
        ips = lambda ms: batch * 1e3 / ms if ms else None  # noqa: E731
        res["torch_img_s"] = ips(res["torch_device_median_ms"])
        res["torch_wall_img_s"] = ips(res["torch_wall_median_ms"])
        res["anvil_wall_img_s"] = ips(res["anvil_wall_median_ms"])
        res["anvil_device_img_s"] = ips(res["anvil_device_median_ms"])
        # Anvil's throughput: the pipelined phase's (runs in flight, copies included) where it
        # ran, else one run after another (wall, copies included).
        k, v = throughput_of(res.get("anvil_pipelined", {}))
        if v is not None:
            res["anvil_img_s"] = v * (batch if "run" in k else 1)
            res["anvil_img_s_from"] = f"--in-flight {a.in_flight}, wall"
        else:
            res["anvil_img_s"] = res["anvil_wall_img_s"]
            res["anvil_img_s_from"] = "runs one after another, wall"
    del t
    torch.cuda.empty_cache()
    log(f"  {label}: torch {fmt(res['torch_device_median_ms'])} ms device / {fmt(res['torch_wall_median_ms'])} ms wall;"
        f" anvil {fmt(res['anvil_device_median_ms'])} ms device / {fmt(res['anvil_wall_median_ms'])} ms wall")
    return res


def cudnn_str(v):
    """cuDNN 9's version number (major * 10000 + minor * 100 + patch) as text."""
    if not v:
        return "?"
    return f"{v // 10000}.{v % 10000 // 100}.{v % 100}" if v >= 90000 else f"{v // 1000}.{v % 1000 // 100}.{v % 100}"


def fmt(v, digits=3):
    if v is None:
        return "–"
    return f"{v:.{digits}g}" if v < 100 else f"{v:.0f}"


def markdown(out):
    m = out["meta"]
    L = [f"# GPU benchmark: {m['date']}", ""]
    L.append(f"GPU: {m['gpu']} (driver {m['driver']}), PyTorch {m['torch']} (cuDNN {m['torch_cudnn']}), "
             f"Anvil {m.get('anvil_version', '?')} {m.get('anvil_commit', '')} (`--backend cuda --precision "
             f"{m['precision']}`{', --in-flight %d at batch %d' % (m['in_flight'], m['batch']) if m['in_flight'] > 1 else ''}), "
             f"cuDNN loaded by Anvil: {m.get('anvil_cudnn', '?')}.")
    L.append("")
    L.append(f"PyTorch: fp16, channels_last, cudnn.benchmark, CUDA-graph replay. Batch 1: median of "
             f"{m['runs']} runs, **device** ms (CUDA events around the replay) / **wall** ms (host clock: "
             f"input copy in, replay, output copy out, synchronize — what one Anvil `Session::run` does). "
             f"Batch {m['batch']}: images/s from the median of {m['batch_runs'] // m['block']} timed blocks of {m['block']} "
             f"back-to-back replays (device) / from single runs with copies (wall). "
             f"Anvil: ONNX export of the same network (fp32 weights, opset 17, dynamic batch), device ms "
             f"where `anvil bench` reports them (CUDA events around each run), else –; wall ms per "
             f"`Session::run` (copies in and out included). Anvil batch {m['batch']}: images/s from its median "
             f"device time / from wall time ({'%d runs in flight, `Session::submit/wait`' % m['in_flight'] if m['in_flight'] > 1 else 'runs one after another'}). "
             f"The two engines take turns ({m['block']} runs a turn; the pipelined Anvil run follows). "
             f"Ratio b1 = Anvil / PyTorch ms (below 1: Anvil faster), on device times where both have them, "
             f"else wall. Anvil's device time spans the whole run on the GPU (input upload to output "
             f"download: at batch {m['batch']} the upload of the fp32 images is a large part of it); "
             f"PyTorch's covers the graph replay only. Ratio b{m['batch']} = Anvil's pipelined wall "
             f"images/s (copies in and out included) / PyTorch's device images/s (no copies), then "
             f"/ PyTorch's wall images/s (above 1: Anvil faster).")
    L.append("")
    b = m["batch"]
    L.append(f"| model | PyTorch b1 ms (device / wall) | Anvil b1 ms (device / wall) | ratio b1 | "
             f"PyTorch b{b} img/s (device / wall) | Anvil b{b} img/s (device / wall) | ratio b{b} (vs PyTorch device / wall) |")
    L.append("|---|---|---|---|---|---|---|")
    notes = []
    for name, r in out["results"].items():
        r1, rb = r.get("b1", {}), r.get(f"b{b}", {})
        td, tw = r1.get("torch_device_median_ms"), r1.get("torch_wall_median_ms")
        ad, aw = r1.get("anvil_device_median_ms"), r1.get("anvil_wall_median_ms")
        if ad and td:
            ratio1 = f"{ad / td:.2f}"
        elif aw and tw:
            ratio1 = f"{aw / tw:.2f} (wall)"
        else:
            ratio1 = "–"
        ti, tiw, ai = rb.get("torch_img_s"), rb.get("torch_wall_img_s"), rb.get("anvil_img_s")
        aid = rb.get("anvil_device_img_s")
        ratiob = (f"{ai / ti:.2f}" if ai and ti else "–") + " / " + (f"{ai / tiw:.2f}" if ai and tiw else "–")
        a1 = "failed" if "anvil_error" in r1 and not aw else f"{fmt(ad)} / {fmt(aw)}"
        ab = "failed" if "anvil_error" in rb and not ai else f"{fmt(aid, 4)} / {fmt(ai, 4)}"
        L.append(f"| {r['title']} | {fmt(td)} / {fmt(tw)} | {a1} | {ratio1} | {fmt(ti, 4)} / {fmt(tiw, 4)} | "
                 f"{ab} | {ratiob} |")
        for key, rr in (("b1", r1), (f"b{b}", rb)):
            for k in ("anvil_error", "anvil_check_error", "anvil_pipelined_error"):
                if k in rr:
                    notes.append(f"- {r['title']} {key}: {k.replace('_', ' ')}: {rr[k]}")
            for n in rr.get("notes", []):
                notes.append(f"- {r['title']} {key}: {n}")
    L.append("")
    L.append("Agreement with PyTorch fp32 on the seeded input (max |x − ref| / max |ref|; fp16 "
             "storage gives about 1e-3 to 1e-2):")
    L.append("")
    L.append(f"| model | PyTorch fp16 b1 | Anvil b1 | PyTorch fp16 b{b} | Anvil b{b} |")
    L.append("|---|---|---|---|---|")
    for name, r in out["results"].items():
        cells = []
        for key in ("b1", f"b{b}"):
            rr = r.get(key, {})
            for k in ("torch_check_rel", "anvil_check_rel"):
                cells.append(f"{rr[k]:.1e}" if rr.get(k) is not None else "–")
        L.append(f"| {r['title']} | " + " | ".join(cells) + " |")
    L.append("")
    if notes:
        L += ["Notes:", ""] + notes + [""]
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--anvil", default="", help="the anvil binary (empty: PyTorch only)")
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--out", default=os.environ.get("OUT", os.path.join(HERE, "results")))
    ap.add_argument("--name", default="gpu_latest")
    ap.add_argument("--work", default="/tmp/anvil-gpu-models", help="ONNX files and inputs go here")
    ap.add_argument("--batch", type=int, default=64, help="the throughput batch size (default: 64)")
    ap.add_argument("--runs", type=int, default=200, help="timed batch-1 runs per engine (default: 200)")
    ap.add_argument("--batch-runs", type=int, default=100,
                    help="timed batch-B runs per engine (PyTorch: blocks of --block replays; default: 100)")
    ap.add_argument("--block", type=int, default=10, help="runs per turn (default: 10)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed runs first, per engine (default: 20)")
    ap.add_argument("--precision", default="fp16")
    ap.add_argument("--in-flight", type=int, default=2,
                    help="Anvil: runs in flight at batch B, where `anvil bench` has --in-flight (default: 2)")
    ap.add_argument("--anvil-arg", action="append", default=[],
                    help="one more argument for `anvil bench`/`anvil run` (repeat; use --anvil-arg=--x)")
    ap.add_argument("--anvil-commit", default="")
    ap.add_argument("--anvil-cudnn", default="", help="cuDNN that Anvil loads (for the table)")
    ap.add_argument("--no-check", action="store_true", help="skip the output comparison")
    ap.add_argument("--timeout", type=int, default=150, help="seconds Anvil may take for one answer")
    a = ap.parse_args()

    if not torch.cuda.is_available():
        sys.exit("torch_cuda_bench: PyTorch sees no CUDA device")
    torch.backends.cudnn.benchmark = True
    # The fp32 reference must be fp32: no TF32 in its convolutions and matrix products (the
    # fp16 runs are unaffected).
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    names = [n for n in a.models.split(",") if n]
    for n in names:
        if n not in ebm.MODELS:
            sys.exit(f"unknown model '{n}' (known: {', '.join(ebm.MODELS)})")

    anvil = a.anvil
    flags = anvil_flags(anvil) if anvil else set()
    a.run_flags = anvil_flags(anvil, "run") if anvil else set()
    if anvil:
        log(f"anvil bench options: {' '.join(sorted(flags))}")
    drv = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip() if shutil.which("nvidia-smi") else "?"
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "gpu": torch.cuda.get_device_name(0), "driver": drv.splitlines()[0] if drv else "?",
            "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "torch_cudnn": cudnn_str(torch.backends.cudnn.version()),
            "precision": a.precision, "batch": a.batch, "runs": a.runs, "batch_runs": a.batch_runs,
            "block": a.block, "warmup": a.warmup, "in_flight": a.in_flight if "--in-flight" in flags else 1,
            "anvil_commit": a.anvil_commit, "anvil_cudnn": a.anvil_cudnn or "?",
            "anvil_flags": sorted(flags)}
    if anvil:
        meta["anvil_version"] = subprocess.run([anvil, "--version"], capture_output=True, text=True).stdout.strip()
    log(f"torch_cuda_bench: {meta['gpu']}, driver {meta['driver']}, torch {meta['torch']} "
        f"(CUDA {meta['torch_cuda']}, cuDNN {meta['torch_cudnn']}); models {', '.join(names)}")

    out = {"meta": meta, "results": {}}
    for name in names:
        t0 = time.perf_counter()
        model, x1 = ebm.build(name)
        onnx_path = os.path.join(a.work, name + ".onnx")
        exporter = ebm.export_onnx(model, x1, onnx_path, 17, dynamic_batch=True)
        gflop = ebm.count_gflop(model, x1)
        r = {"title": ebm.MODELS[name][2], "gflop": round(gflop, 4), "onnx": onnx_path, "exporter": exporter,
             "export_s": round(time.perf_counter() - t0, 2)}
        log(f"{name}: exported {onnx_path} ({os.path.getsize(onnx_path) / 1e6:.1f} MB) in {r['export_s']} s")
        ref_model = copy.deepcopy(model).cuda().eval()
        model16 = copy.deepcopy(model).cuda().half().to(memory_format=torch.channels_last).eval()
        xb = torch.from_numpy(np.random.RandomState(2).standard_normal((a.batch,) + tuple(x1.shape[1:]))
                              .astype(np.float32))
        r["b1"] = run_config(name, model16, ref_model, x1, anvil, flags, a, a.work, 1, a.runs, f"{name} b1")
        r[f"b{a.batch}"] = run_config(name, model16, ref_model, xb, anvil, flags, a, a.work, a.batch,
                                      a.batch_runs, f"{name} b{a.batch}")
        out["results"][name] = r
        del ref_model, model16
        torch.cuda.empty_cache()
        # Written after every model, so a run cut short still leaves its results.
        with open(os.path.join(a.out, a.name + ".json"), "w") as f:
            json.dump(out, f, indent=1)
    md = markdown(out)
    with open(os.path.join(a.out, a.name + ".md"), "w") as f:
        f.write(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
