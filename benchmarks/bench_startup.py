"""Actor start-up, step by step: where a fresh engine or scorer actor's first seconds go (issue 17).

    python benchmarks/bench_startup.py                  # 4 tiny models x 3 fresh processes, then Ray: ~15 min
    python benchmarks/bench_startup.py --archs gpt2 --repeat 5 --ray-repeat 0
    python benchmarks/bench_startup.py --repeat 0 --ray-variants hiwar,warm --pipeline-variants hiwar,warm

First, which heavy packages transformers' model code pulls in and through which module (``-X importtime``).

Part 1, fresh processes: each step an actor takes, timed in a new interpreter per repeat: interpreter start;
``import torch``; ``import transformers``; the model code (hiwar's loader reads the config, then
``AutoModelForCausalLM`` resolves the model class, which imports transformers' model stack); the tokenizer; the
weights (``from_pretrained`` through :mod:`hiwar.models.loader`); a first and a second ``generate`` (8 prompts,
16 new tokens). Models: a tiny GPT-2 and Llama (:func:`hiwar.tiny_models.build_tiny_model`) and hiwar's Jais and
AraGPT2 ports (``build_tiny_jais``, ``build_tiny_aragpt2``). Variants: ``plain`` (``HIWAR_EAGER_IMPORTS=1`` and
``HIWAR_IMPORT_CACHE=0``: the imports as transformers makes them, the "before"), ``deferred`` (:mod:`hiwar.startup`'s
deferred imports only) and ``hiwar`` (those and :mod:`hiwar.import_cache`, as hiwar runs).

Part 2, a real Ray actor (1 CPU) running the transformers engine's actor class (``HFGenerator``), timed from the
actor's submission: until its worker process exists, until its constructor starts (worker boot, imports, the
class and arguments arriving), until its constructor ends (tokenizer, weights), and until its first batch's rows
come back. A fresh local Ray (2 CPUs) per run. Variants: ``plain``; ``hiwar`` (deferred imports); ``task-warmed``
(a task imports torch in every worker first: Ray gives an actor a worker that never ran a task, so it does not
help); ``warm`` (:mod:`hiwar.cluster.warm_workers`: one warm worker prestarted right after ``ray.init``, as
``hiwar generate`` does when it joins Ray, and the actor carrying its runtime env), with the actor submitted
``--settle`` seconds after ``ray.init``. Every variant but ``warm`` runs with ``HIWAR_WARM_WORKERS=0``.

Part 3, a whole Ray Data ``generate_texts`` run (one actor) started right after ``ray.init``, per variant of
``--pipeline-variants``: seconds from ``ray.init``, and from the start of execution, to the first rows. With
``warm`` the warm worker is asked for right after ``ray.init``, as ``hiwar generate`` does, so its warm-up overlaps
with the driver's preflight (the tokenizer check imports transformers) and Ray Data's own start-up.

The machine is shared (other jobs run on its 2 cores): every figure is the minimum over repeats, CPU seconds
(less disturbed by other jobs than wall seconds) are printed beside wall seconds, and each line carries the
1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # as Ray sets it for a 1-CPU actor

ARCHS = ("gpt2", "llama", "jais", "aragpt2")
STEPS = ("process", "import torch", "import transformers", "model code", "tokenizer", "weights", "generate 1",
         "generate 2")  # fmt: skip
PROMPTS = ["ما هي عاصمة مصر؟", "كيف حالك اليوم يا صديقي؟", "اكتب جملة عن البحر", "مرحبا"] * 2


def cpu_s() -> float:
    """CPU seconds (user + system) this process has used."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load1() -> float:
    return os.getloadavg()[0]


def build_models(root: Path) -> dict[str, Path]:
    """The four tiny models, built once under ``root`` (reused when already there)."""
    from hiwar.tiny_models import TinySpec, build_tiny_aragpt2, build_tiny_jais, build_tiny_model

    gpt2 = build_tiny_model(root / "gpt2")
    dirs = {"gpt2": gpt2, "llama": build_tiny_model(root / "llama", TinySpec(arch="llama"), tokenizer_dir=gpt2)}
    for name, build in (("jais", build_tiny_jais), ("aragpt2", build_tiny_aragpt2)):
        dirs[name] = root / name
        if not (dirs[name] / "model.safetensors").is_file():
            build(dirs[name])
    return dirs


# ---- part 1: one fresh process per measurement ------------------------------------------------------------------


def child(model_dir: str, spawned_at: float) -> None:
    """Run an actor's steps in this fresh process; print ``{step: [wall_s, cpu_s]}`` as JSON."""
    import hiwar  # noqa: F401 - as in an actor, whose class's module comes first (it installs the import cache)

    out: dict[str, list[float]] = {"process": [time.time() - spawned_at, cpu_s()]}

    def step(name: str, fn: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), cpu_s()
        value = fn()
        out[name] = [time.perf_counter() - wall, cpu_s() - cpu]
        return value

    torch = step("import torch", lambda: __import__("torch"))
    torch.set_num_threads(1)
    step("import transformers", lambda: __import__("transformers"))
    from hiwar.models.loader import ModelRef, load_causal_lm, load_config, load_tokenizer

    ref = ModelRef(model_dir)

    def model_code() -> Any:
        config = load_config(ref)  # first, as in an actor: the loader defers what it can before model code loads
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM._model_mapping[type(config)]  # imports the model's module

    step("model code", model_code)
    tokenizer = step("tokenizer", lambda: load_tokenizer(ref))
    tokenizer.padding_side = "left"
    model = step("weights", lambda: load_causal_lm(ref).eval())
    batch = tokenizer(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)

    def generate() -> Any:
        with torch.inference_mode():
            return model.generate(**batch, max_new_tokens=16, min_new_tokens=16, do_sample=False,
                                  pad_token_id=tokenizer.pad_token_id)  # fmt: skip

    step("generate 1", generate)
    step("generate 2", generate)
    print(json.dumps(out))


def child_env(variant: str) -> dict[str, str]:
    """The environment of a measured process: ``plain`` turns hiwar.startup's deferred imports and hiwar's import
    cache (:mod:`hiwar.import_cache`) off, ``deferred`` only the cache; every variant but ``warm`` turns warm
    workers off (:mod:`hiwar.cluster.warm_workers`)."""
    env = dict(os.environ)
    env.pop("HIWAR_EAGER_IMPORTS", None)
    env.pop("HIWAR_IMPORT_CACHE", None)
    env["HIWAR_WARM_WORKERS"] = "1" if variant == "warm" else "0"
    if variant == "plain":
        env["HIWAR_EAGER_IMPORTS"] = "1"
    if variant in ("plain", "deferred"):
        env["HIWAR_IMPORT_CACHE"] = "0"
    return env


def run_child(model_dir: Path, variant: str) -> dict[str, list[float]]:
    env = child_env(variant)
    spawned = time.time()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(model_dir), str(spawned)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def part1(dirs: dict[str, Path], archs: list[str], variants: list[str], repeat: int) -> None:
    print(f"\n== Part 1: an actor's steps in fresh processes (min of {repeat}; wall s / CPU s) ==")
    for variant in variants:
        best: dict[str, dict[str, list[float]]] = {}
        loads = []
        for _ in range(repeat):
            for arch in archs:
                loads.append(load1())
                got = run_child(dirs[arch], variant)
                cur = best.setdefault(arch, {s: [1e9, 1e9] for s in STEPS})
                for s in STEPS:
                    cur[s] = [min(cur[s][0], got[s][0]), min(cur[s][1], got[s][1])]
        print(f"\nvariant {variant} (load average during: {min(loads):.1f}-{max(loads):.1f})")
        print(f"{'step':22s}" + "".join(f"{a:>16s}" for a in archs))
        for s in (*STEPS, "start-up", "total"):
            cells = []
            for arch in archs:
                b = best[arch]
                keys = {"start-up": STEPS[:6], "total": STEPS[:7]}.get(s, (s,))
                cells.append(f"{sum(b[k][0] for k in keys):7.2f} / {sum(b[k][1] for k in keys):5.2f}")
            print(f"{s:22s}" + "".join(f"{c:>16s}" for c in cells))
        share = [sum(best[a][k][0] for k in STEPS[:4]) / sum(best[a][k][0] for k in STEPS[:7]) for a in archs]
        print(f"{'process+imports share':22s}" + "".join(f"{x:>16.0%}" for x in share))


HEAVY = ("torch.distributed.tensor", "sympy", "torch._dynamo", "sklearn", "pandas", "scipy.optimize", "accelerate")
TREE_SNIPPET = """
import sys, hiwar, torch, transformers  # hiwar first, as in an actor: it installs the import cache
from hiwar.models.loader import ModelRef, load_config
config = load_config(ModelRef(sys.argv[1]))
from transformers import AutoModelForCausalLM
AutoModelForCausalLM._model_mapping[type(config)]
"""


def import_chains(text: str) -> dict[str, tuple[float, str]]:
    """From ``-X importtime`` output: each HEAVY module's cumulative seconds (what it brought in that was not yet
    imported) and the chain of modules that imported it, up to the first transformers or hiwar module."""
    rows = []  # (depth, name, cumulative s), in the order imports finish
    for line in text.splitlines():
        if line.startswith("import time:") and "[us]" not in line:
            _, cumulative, name = line[len("import time:") :].split("|")
            rows.append(((len(name) - len(name.lstrip())) // 2, name.strip(), int(cumulative) / 1e6))
    found = {}
    for i, (depth, name, cumulative) in enumerate(rows):
        if name in HEAVY and name not in found:
            chain, want = [], depth
            for d, parent, _ in rows[i + 1 :]:  # a module's importer finishes after it, one level up
                if d < want:
                    chain.append(parent)
                    want = d
                    if sum(p.startswith(("transformers", "hiwar")) for p in chain) == 2:
                        break
            found[name] = (cumulative, " <- ".join(chain[-4:]))
    return found


def import_tree(model_dir: Path, variants: list[str], repeat: int) -> None:
    print(f"\n== What the model code imports (python -X importtime, tiny GPT-2, min of {repeat}) ==")
    for variant in variants:
        best: dict[str, tuple[float, str]] = {}
        load = load1()
        for _ in range(repeat):
            args = [sys.executable, "-X", "importtime", "-c", TREE_SNIPPET, str(model_dir)]
            proc = subprocess.run(args, env=child_env(variant), capture_output=True, text=True, check=True)
            for name, (seconds, chain) in import_chains(proc.stderr).items():
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, chain)
        print(f"variant {variant} (load {load:.1f}):")
        for name in HEAVY:
            seconds, chain = best.get(name, (0.0, "not imported"))
            print(f"  {name:26s} {seconds:5.2f} s  {chain}")


# ---- part 2: a real Ray actor -----------------------------------------------------------------------------------


class Probe:
    """The engine's actor class inside a Ray actor, with the moments its start-up passes."""

    def __init__(self, cfg: dict, submitted: float) -> None:
        import psutil

        import hiwar.startup

        self.marks = {"submitted": submitted, "process": psutil.Process().create_time(), "ctor": time.time()}
        self.marks["warm"] = hiwar.startup.warmed_at or float("nan")  # when the worker's warm-up finished
        self.cpu_before = cpu_s()
        from hiwar.generation.engines.hf_engine import HFGenerator

        self.engine = HFGenerator(cfg, 1)
        self.marks["ready"] = time.time()
        self.cpu_ctor = cpu_s() - self.cpu_before

    def first_batch(self, rows: list[dict]) -> dict:
        import pyarrow as pa

        out = self.engine(pa.Table.from_pylist(rows))
        self.marks["rows"] = time.time()
        errors = [e for e in out.column("error").to_pylist() if e]
        return {"marks": self.marks, "ctor_cpu": self.cpu_ctor, "errors": errors, "pid": os.getpid()}


def engine_cfg(model_dir: str) -> dict:
    from hiwar.generation.config import EngineConfig, SamplingConfig

    sampling = SamplingConfig(temperature=0.3, max_tokens=16)
    return EngineConfig(model=model_dir, sampling=sampling, batch_size=8, prompt_format="chat_template").model_dump()


def message_rows(n: int = len(PROMPTS)) -> list[dict]:
    return [
        {"request_id": str(i), "seed": i, "messages": [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]}
        for i in range(n)
    ]


def ray_run(model_dir: str, variant: str, settle: float, mode: str) -> dict:
    """One fresh local Ray (2 CPUs). ``actor``: submit one engine actor ``settle`` s after ``ray.init`` and return
    its marks. ``pipeline``: run ``generate_texts`` (one actor) at once and return the seconds to its first rows."""
    import ray

    from hiwar.cluster import warm_workers

    started = time.time()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    result: dict = {"init_s": time.time() - started, "load": load1()}
    try:
        if variant == "warm":  # as `hiwar generate` does when it joins Ray (session.connect(warm=actors))
            warm_workers.ensure(1)
        if mode == "pipeline":
            result.update(pipeline_first_rows(model_dir, started))
            return result
        if variant == "task-warmed":
            warm = ray.remote(num_cpus=1)(lambda: __import__("transformers.generation.utils") and os.getpid())
            warmed_pids = ray.get([warm.remote() for _ in range(2)])
        time.sleep(settle)
        result["load"] = load1()
        options = {"runtime_env": warm_workers.take(1)} if variant == "warm" else {}
        actor = ray.remote(num_cpus=1)(Probe).options(**options).remote(engine_cfg(model_dir), time.time())
        result.update(ray.get(actor.first_batch.remote(message_rows())))
        if variant == "task-warmed":
            result["reused_warm_worker"] = result["pid"] in warmed_pids
        return result
    finally:
        ray.shutdown()


def pipeline_first_rows(model_dir: str, started: float) -> dict:
    """Seconds from ``ray.init`` (and from the start of execution) to the first rows out of ``generate_texts``."""
    import ray.data

    from hiwar.generation.config import EngineConfig
    from hiwar.generation.engines import generate_texts

    ds = generate_texts(
        ray.data.from_items(message_rows(32), override_num_blocks=4), EngineConfig(**engine_cfg(model_dir))
    )
    executing = time.time()
    for _ in ds.iter_batches(batch_size=None):
        now = time.time()
        return {"first_rows_s": now - started, "from_execution_s": now - executing}
    raise RuntimeError("no rows")


def spawn_ray(model_dir: Path, variant: str, settle: float, mode: str) -> dict:
    env = child_env(variant)
    args = [sys.executable, __file__, "--ray-child", str(model_dir), variant, str(settle), mode]
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def part2(model_dir: Path, variants: list[str], repeat: int, settle: float) -> None:
    print(f"\n== Part 2: one engine actor (HFGenerator, tiny GPT-2) in a fresh local Ray, submitted {settle:g} s "
          f"after ray.init; seconds after its submission, min of {repeat} ==")  # fmt: skip
    print("variant        ray.init  worker up   warmed up   ctor start  ready  first rows  ctor CPU  load")
    for variant in variants:
        runs = [spawn_ray(model_dir, variant, settle, "actor") for _ in range(repeat)]
        marks = [r["marks"] for r in runs]

        def best(key: str, marks: list[dict] = marks) -> float:
            return min(m[key] - m["submitted"] for m in marks)

        print(
            f"{variant:14s} {min(r['init_s'] for r in runs):8.1f} {best('process'):10.1f} {best('warm'):13.1f} "
            f"{best('ctor'):11.2f} {best('ready'):6.2f} {best('rows'):11.2f} {min(r['ctor_cpu'] for r in runs):9.2f} "
            f"{min(r['load'] for r in runs):5.1f}"
            + (f"  (actor reused a warmed worker: {any(r['reused_warm_worker'] for r in runs)})"
               if variant == "task-warmed" else "")
        )  # fmt: skip
        for r in runs:
            if r["errors"]:
                print(f"  rows with errors: {r['errors'][:2]}")
    print("(worker up < 0: the actor got a worker Ray started before the actor was submitted, at ray.init)")


def part3(model_dir: Path, variants: list[str], repeat: int) -> None:
    print(f"\n== Part 3: Ray Data generate_texts, one actor, run right after ray.init (min of {repeat}) ==")
    print("variant        ray.init  first rows after ray.init  after execution starts  load")
    for variant in variants:
        runs = [spawn_ray(model_dir, variant, 0.0, "pipeline") for _ in range(repeat)]
        print(
            f"{variant:14s} {min(r['init_s'] for r in runs):8.1f} {min(r['first_rows_s'] for r in runs):26.2f} "
            f"{min(r['from_execution_s'] for r in runs):23.2f} {min(r['load'] for r in runs):5.1f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--variants", default="plain,deferred,hiwar", help="Part 1: plain (before), deferred, hiwar.")
    parser.add_argument("--repeat", type=int, default=3, help="Fresh processes per model and variant (0: skip).")
    parser.add_argument("--ray-variants", default="plain,hiwar,task-warmed,warm")
    parser.add_argument("--ray-repeat", type=int, default=2, help="Fresh Ray clusters per variant (0: skip).")
    parser.add_argument("--settle", type=float, default=20.0, help="Seconds between ray.init and the actor.")
    parser.add_argument("--pipeline-variants", default="plain,hiwar,warm", help="Part 3 ('' to skip).")
    parser.add_argument("--model-dir", type=Path, default=Path(tempfile.gettempdir()) / "hiwar-bench-startup")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--ray-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], float(args.child[1]))
    if args.ray_child:
        model_dir, variant, settle, mode = args.ray_child
        return print(json.dumps(ray_run(model_dir, variant, float(settle), mode)))
    dirs = build_models(args.model_dir)
    print(f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()}; models under {args.model_dir}")
    if args.repeat:
        import_tree(dirs["gpt2"], args.variants.split(","), args.repeat)
        part1(dirs, args.archs.split(","), args.variants.split(","), args.repeat)
    if args.ray_repeat and args.ray_variants:
        part2(dirs["gpt2"], args.ray_variants.split(","), args.ray_repeat, args.settle)
    if args.ray_repeat and args.pipeline_variants:
        part3(dirs["gpt2"], args.pipeline_variants.split(","), args.ray_repeat)
    print(f"\nload average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
