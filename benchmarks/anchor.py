"""What bench_diffwave.py and bench_sampling.py share: the CPU line, the PyTorch reference measured
in the same run (benchmarks/bench_reference.py in .venv-torch), and measurements in fresh child
processes with their own environment (oneDNN on or off) and a note of how busy the machine was.

Nothing here prints hard-coded figures: a ratio is always reference seconds / our seconds from
the same invocation on the same CPU (> 1: we are faster).
"""
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TORCH_PYTHON = ROOT / ".venv-torch" / "bin" / "python"
REFERENCE_SCRIPT = ROOT / "benchmarks" / "bench_reference.py"
UNSUPPORTED = "UNSUPPORTED "            # a child's line: this configuration does not exist here


def cpu_summary():
    """'AMD EPYC, family 25 model 17 (2 CPUs); avx512_bf16 yes, …' from lscpu (or
    /proc/cpuinfo: the name and flags only)."""
    name, flags, ids = None, set(), {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, env={
            **os.environ, "LC_ALL": "C"}).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name" and name is None:
                name = value.strip()
            elif key.strip() in ("CPU family", "Model") and key.strip() not in ids:
                ids[key.strip()] = value.strip()
            elif key.strip() == "Flags":
                flags |= set(value.split())
    except OSError:
        pass
    if not flags or name is None:
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key.strip() == "model name" and name is None:
                        name = value.strip()
                    elif key.strip() == "flags":
                        flags |= set(value.split())
        except OSError:
            pass
    marks = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}"
                      for flag in ("avx512_bf16", "amx_bf16", "avx512f", "avx2"))
    family = (f", family {ids['CPU family']} model {ids['Model']}"
              if "CPU family" in ids and "Model" in ids else "")
    return f"{name or 'unknown CPU'}{family} ({os.cpu_count()} CPUs); {marks}"


def busy_cpu_seconds():
    """CPU-seconds all processes have spent busy since boot (/proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def idle_fraction(seconds=2.0):
    start = busy_cpu_seconds()
    time.sleep(seconds)
    if start is None:
        return float("nan")
    return max(0.0, 1.0 - (busy_cpu_seconds() - start) / (seconds * os.cpu_count()))


def warn_if_busy():
    idle = idle_fraction()
    if idle < 0.9:
        print(f"warning: the CPUs were only {idle:.0%} idle before the run; other jobs slow both "
              f"sides unevenly (the ratios are most trustworthy on a quiet machine)")


def _run(cmd, env=None):
    """→ (completed process, share of a core that other processes used while it ran)."""
    before, busy0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), busy_cpu_seconds(), time.time()
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})})
    after, busy1 = resource.getrusage(resource.RUSAGE_CHILDREN), busy_cpu_seconds()
    mine = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    wall = time.time() - t0
    others = max(0.0, (busy1 - busy0) - mine) / wall if busy0 is not None else float("nan")
    return proc, others


def run_child(cmd, env=None):
    """Runs one measurement in a fresh process.

    The child prints 'RESULT {json}' (or 'UNSUPPORTED why'). → (result, others, error): result is
    the dict or None; others the share of a core other processes used meanwhile; error a one-line
    reason when there is no result (the child's stderr tail is echoed then).
    """
    proc, others = _run(cmd, env)
    for line in proc.stdout.splitlines():
        if line.startswith(UNSUPPORTED):
            return None, others, line[len(UNSUPPORTED):]
    results = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode == 0 and results:
        return json.loads(results[-1][len("RESULT "):]), others, None
    tail = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
    sys.stderr.write("\n".join(tail[-15:]) + "\n")
    # The message, not TF's node/op trailer ("[[{{node …}}]] [Op:…]") or a traceback line.
    informative = [ln.strip() for ln in tail if not ln.strip().startswith(("[[", "File ", "^"))]
    reason = informative[-1] if informative else (tail[-1].strip() if tail else "no output")
    return None, others, f"failed (exit {proc.returncode}): {reason[:160]}"


def run_reference(only, extra=(), threads=2, env=None):
    """The PyTorch reference in .venv-torch → (result dict, others) or (None, None) if missing.

    `env` ("KEY=VALUE" strings) goes to the reference's process only, e.g. OMP_WAIT_POLICY=PASSIVE:
    on a busy machine PyTorch's OpenMP threads spin-wait for descheduled peers and the reference
    slows several-fold (ratios then flatter us); the default is PyTorch's own setting.
    """
    if not TORCH_PYTHON.exists():
        print(f"PyTorch reference: {TORCH_PYTHON.relative_to(ROOT)} is missing: run make "
              f"bench-venv (no ratios this time)")
        return None, None
    cmd = [TORCH_PYTHON, REFERENCE_SCRIPT, "--json", "--threads", str(threads), "--only", only,
           *extra]
    extra_env = dict(item.split("=", 1) for item in env or ())
    proc, others = _run(cmd, extra_env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-3000:])
        print(f"PyTorch reference failed (exit {proc.returncode}); no ratios this time "
              f"(rebuild it with make bench-venv)")
        return None, None
    result = json.loads(lines[-1])
    print(f"PyTorch reference: torch {result['torch']}, diffwave {result['diffwave']} "
          f"({result['forward']}), {result['parameters']:,} parameters, "
          f"{result['threads']} threads" + "".join(f", {k}={v}" for k, v in extra_env.items()))
    return result, others


def onednn_label(mode):
    return f"oneDNN {'on' if mode == '1' else 'off'}"


def ratio_text(reference, ours):
    return f"{reference / ours:.2f}×" if reference and ours else "—"


def goal_text(reference, ours, goal):
    if not reference or not ours:
        return "—"
    return "met" if reference / ours >= goal else "not met"


def env_item(text):
    """argparse type for KEY=VALUE."""
    if "=" not in text or not text.split("=", 1)[0]:
        raise ValueError(text)
    return text


def parse_list(text, allowed, what):
    items = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise SystemExit(f"error: {what}: {', '.join(bad) or 'empty'} (choose from "
                         f"{', '.join(allowed)})")
    return items


def others_note(shares):
    shares = [s for s in shares if s == s]                  # drop NaN
    if shares and max(shares) > 0.1:
        return (f"warning: other processes used up to {max(shares):.0%} of a core during the "
                f"measurements; repeat on a quiet machine before quoting figures")
    return None



def run_configurations(script, modes, impls, precisions, child_args, shares):
    """Each oneDNN mode × implementation × precision in its own child process of `script`
    (`--child --precision P --impl I` + child_args) → rows (mode, impl, precision, result,
    others, error). An implementation this DiffWave does not accept (a child's
    "network.…" error) is noted and dropped; if none is left, the default is measured."""
    def run_all(impl_list):
        out = []
        for mode in modes:
            for impl in impl_list:
                for precision in precisions:
                    cmd = [sys.executable, script, "--child", "--precision", precision,
                           "--impl", impl, *child_args]
                    result, others, error = run_child(cmd, env={"TF_ENABLE_ONEDNN_OPTS": mode})
                    shares.append(others)
                    out.append((mode, impl, precision, result, others, error))
        return out

    rows = run_all(impls)
    unsupported = {impl for _, impl, _, r, _, e in rows if e and e.startswith("network.")}
    if unsupported:
        print(f"note: {next(e for *_, e in rows if e and e.startswith('network.'))}")
        rows = [row for row in rows if row[1] not in unsupported]
        if not rows:
            print("note: measuring the default implementation instead (--impls default)")
            rows = run_all(["default"])
    return rows
