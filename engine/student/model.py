"""The student on disk and in memory: checking and loading it (tokenizer, weights, LoRA), its forward pass,
and the run's checkpoints and final model.

Checkpoints (``checkpoints/step-NNNNNN/``) hold weights as safetensors, optimizer state through ``torch.save``
(tensors and numbers only, loaded with ``weights_only=True``, so a checkpoint cannot run code) and the loop's
counters as ``state.json``. Each is written to a temporary folder and renamed, so a kill mid-write never
leaves a checkpoint that looks complete.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any

from engine.student.events import TrainingFault
from engine.student.formatting import PromptFormat
from engine.student.run_config import LoraSettings, RunConfig

# LoRA target modules per architecture (attention + MLP projections); others fall back to peft's table,
# then to every linear layer.
LORA_TARGETS: dict[str, list[str]] = {
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "gptj": ["q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    "bloom": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "falcon": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"],
}
_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
for _name in ("llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3",
              "olmo", "olmo2", "smollm3", "granite", "cohere", "stablelm"):
    LORA_TARGETS[_name] = _LLAMA_LIKE
FULL_FINETUNE_MAX_PARAMS = 50_000_000


# -- checking and loading -------------------------------------------------------------------
def hub_offline() -> None:
    """Never reach the Hugging Face Hub from this process or its children: a student is a local folder or a
    model already in the local cache, and a name that is neither must fail at once with its fix, not wait on
    (or send anything to) a network. ``HF_HUB_OFFLINE`` is read when huggingface_hub is imported, so an
    already imported hub library is switched too; every ``from_pretrained`` also passes
    ``local_files_only=True``."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import huggingface_hub.constants

    huggingface_hub.constants.HF_HUB_OFFLINE = True


def resolve_device(requested: str | None) -> str:
    """``auto`` → cuda when available, else cpu; ``cuda`` without a GPU is a clear error."""
    import torch

    if not requested or requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingFault("config", "--device cuda was asked but torch sees no GPU",
                            fix="use --device cpu or auto, or install a CUDA build of torch")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise TrainingFault("config", f"unknown device {requested!r}", fix="use auto, cpu or cuda")
    return requested


def check_student(student: str) -> None:
    """Fail early, with a fix, when the student is neither a local model folder nor in the local HF cache."""
    hub_offline()
    path = Path(student).expanduser()
    if path.exists():
        if not (path / "config.json").exists() and not (path / "adapter_config.json").exists():
            raise TrainingFault("model", f"student {student} is not a Hugging Face model folder (no config.json)",
                                fix="point --student at a folder saved with save_pretrained")
        return
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(student, "config.json")
    except Exception:  # noqa: BLE001 - an invalid repo id is just "not found"
        found = None
    if not isinstance(found, str):
        raise TrainingFault("model", f"student model {student!r} is neither a local folder nor in the "
                            "Hugging Face cache (this machine is offline)",
                            fix="download it once where there is network (huggingface-cli download NAME) "
                                "or pass a local folder to --student")


def load_tokenizer(student: str, trust_remote_code: bool = False) -> Any:
    """The student's tokenizer, with a pad token (EOS when it has none)."""
    from transformers import AutoTokenizer

    hub_offline()
    try:
        tok = AutoTokenizer.from_pretrained(student, trust_remote_code=trust_remote_code, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any load failure is reported with its cause
        raise _model_fault(student, exc) from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    if tok.eos_token_id is None:
        raise TrainingFault("model", f"the tokenizer of {student} has no EOS token",
                            fix="use a causal LM whose tokenizer defines eos_token")
    return tok


def _model_fault(student: str, exc: Exception) -> TrainingFault:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    if "trust_remote_code" in text:
        return TrainingFault("model", f"student {student} needs its own code ({text})",
                             fix="re-run with --trust-remote-code if you trust that model's code")
    return TrainingFault("model", f"cannot load student {student} as a causal language model ({text})",
                         fix="use a Hugging Face causal LM (GPT-2, Llama, Qwen, SmolLM...) saved locally")


def check_4bit(device: str, method: str = "lora") -> None:
    """Refuse 4-bit base weights where they cannot load, in one line naming what is missing: a CUDA GPU and
    bitsandbytes (the ``gpu`` extra), and LoRA (4-bit weights themselves cannot be trained)."""
    import torch

    missing = []
    if not (device.startswith("cuda") or device == "auto"):
        missing.append(f"a CUDA device (the run's device is {device})")
    elif not torch.cuda.is_available():
        missing.append("a CUDA GPU (torch sees none)")
    if importlib.util.find_spec("bitsandbytes") is None:
        missing.append("bitsandbytes (not installed)")
    if missing:
        raise TrainingFault("config", f"--load-in-4bit needs {' and '.join(missing)}",
                            fix="install the gpu extra (pip install 'rebase-tui[gpu]') on a machine with an NVIDIA "
                                "GPU, or train without --load-in-4bit")
    if method == "full":
        raise TrainingFault("config", "4-bit base weights cannot be fully fine-tuned",
                            fix="use --lora with --load-in-4bit")


def load_model(student: str, device: str, *, method: str, trust_remote_code: bool = False,
               adapter: Path | None = None, full_weights: Path | None = None, trainable: bool = True,
               gradient_checkpointing: bool = False, lora: LoraSettings | None = None,
               load_in_4bit: bool = False) -> tuple[Any, str]:
    """The model for training or inference: base weights (or a full checkpoint), plus a LoRA adapter.

    Returns ``(model, dtype_name)``. On CUDA with bf16 support, LoRA bases load in bf16; with
    ``load_in_4bit`` they load as NF4 (double-quantized, bf16 compute) and are prepared for training as QLoRA
    does (norms in fp32, inputs carrying gradients).
    """
    import torch

    dtype = torch.float32
    if device.startswith("cuda") and torch.cuda.is_bf16_supported() and method == "lora":
        dtype = torch.bfloat16
    source = str(full_weights) if full_weights is not None else student
    if load_in_4bit:
        check_4bit(device, method)
        model = load_pretrained(student, source, dtype, trust_remote_code, quantization_config=_nf4(dtype),
                                 device_map={"": device})
        if trainable:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    else:
        model = load_pretrained(student, source, dtype, trust_remote_code)
        model.to(device)
        if gradient_checkpointing:
            model.gradient_checkpointing_enable()
    if gradient_checkpointing:
        model.config.use_cache = False
    if method == "lora":
        from peft import PeftModel, get_peft_model

        if gradient_checkpointing and not load_in_4bit:
            model.enable_input_require_grads()
        if adapter is not None:
            model = PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
        else:
            model = get_peft_model(model, _lora_config(model, lora or LoraSettings()))
    return model, "nf4" if load_in_4bit else str(dtype).replace("torch.", "")


def load_pretrained(student: str, source: str, dtype: Any, trust_remote_code: bool, **kwargs: Any) -> Any:
    """``AutoModelForCausalLM.from_pretrained(source)`` from local files only (``dtype`` may be ``"auto"``: the
    checkpoint's own); a failure names ``student``."""
    from transformers import AutoModelForCausalLM

    hub_offline()
    try:
        return AutoModelForCausalLM.from_pretrained(source, dtype=dtype, trust_remote_code=trust_remote_code,
                                                    local_files_only=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any load failure is reported with its cause
        raise _model_fault(student, exc) from None


def _nf4(compute_dtype: Any) -> Any:
    """QLoRA's quantization: 4-bit NormalFloat weights, double-quantized constants, matmuls in ``compute_dtype``."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype if compute_dtype != torch.float32 else torch.float16)


def _lora_config(model: Any, lora: LoraSettings) -> Any:
    """LoRA on the architecture's attention and MLP projections (those the model really has)."""
    from peft import LoraConfig

    targets: list[str] | str | None = LORA_TARGETS.get(model.config.model_type)
    if targets is None:
        from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as peft_map

        targets = list(peft_map.get(model.config.model_type) or []) or "all-linear"
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    if isinstance(targets, list):
        targets = [t for t in targets if t in present] or "all-linear"
    return LoraConfig(r=int(lora.r), lora_alpha=int(lora.alpha), lora_dropout=float(lora.dropout),
                      target_modules=targets,
                      fan_in_fan_out=model.config.model_type == "gpt2",  # GPT-2's Conv1D layers
                      task_type="CAUSAL_LM")


def choose_method(requested: str | None, n_params: int) -> str:
    """``lora``/``full`` as asked; ``auto`` → full for tiny models (< 50 M parameters), LoRA otherwise."""
    if requested in ("lora", "full"):
        return requested
    return "full" if n_params < FULL_FINETUNE_MAX_PARAMS else "lora"


def count_parameters(student: str, trust_remote_code: bool = False) -> int:
    """Parameters of the student, from its config (no weights loaded)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    hub_offline()
    try:
        config = AutoConfig.from_pretrained(student, trust_remote_code=trust_remote_code, local_files_only=True)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001
        raise _model_fault(student, exc) from None
    return sum(p.numel() for p in model.parameters())


def model_context(model: Any) -> int | None:
    """The positions a loaded model can attend over (``max_position_embeddings``, GPT-2's ``n_positions``)."""
    config = getattr(model, "config", None)
    context = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return context if isinstance(context, int) and context > 0 else None


# -- the forward pass -----------------------------------------------------------------------
def uses_bf16_autocast(device: str) -> bool:
    """Mixed precision where it is safe and fast: CUDA devices with bf16 support (fp32 elsewhere)."""
    import torch

    return device.startswith("cuda") and torch.cuda.is_bf16_supported()


def forward_loss(model: Any, batch: tuple[Any, Any, Any], bf16: bool) -> Any:
    """The causal-LM loss of one collated batch ``(input_ids, attention_mask, labels)``, in bf16 autocast
    when ``bf16`` (training and validation share it, so both see the same numerics)."""
    import torch

    ids, mask, labels = batch
    device_type = ids.device.type
    precision = torch.autocast(device_type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with precision:
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (CUDA, or host memory under an address-space cap)."""
    import torch

    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text
                                              or "not enough memory" in text)


def free_memory() -> None:
    """Return what dropped models and optimizers held (host and GPU)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# -- checkpoints and the final model --------------------------------------------------------
def checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of the run, oldest first (a half-written one has no state.json)."""
    root = Path(run_dir) / "checkpoints"
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith("step-") and (p / "state.json").exists())


def save_checkpoint(run_dir: Path, model: Any, optimizer: Any, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``checkpoints/step-NNNNNN`` atomically (temp folder renamed); keep the newest ``keep``."""
    import torch

    root = Path(run_dir) / "checkpoints"
    root.mkdir(exist_ok=True)
    final = root / f"step-{state['step']:06d}"
    tmp = root / f".tmp-{state['step']:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint_state(checkpoint: Path) -> dict[str, Any]:
    """The loop's counters saved with a checkpoint (``step``, ``elapsed_s``, ``tokens``, losses)."""
    return json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))


def load_optimizer_state(optimizer: Any, checkpoint: Path, device: str) -> None:
    """Restore the optimizer saved with ``checkpoint`` (tensors only: ``weights_only=True``)."""
    import torch

    if (checkpoint / "optimizer.pt").exists():
        optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", map_location=device, weights_only=True))


def start_weights(cfg: RunConfig, latest: Path | None, method: str) -> tuple[Path | None, Path | None]:
    """``(adapter, full weights)`` a run loads: its newest checkpoint ``latest`` when it resumes, else the weights
    it continues from (``cfg.init_from``: a LoRA adapter, or full weights a new LoRA may go on), else none."""
    if latest is not None:
        return (latest, None) if method == "lora" else (None, latest)
    if not cfg.init_from:
        return None, None
    init = Path(cfg.init_from)
    if (init / "adapter_config.json").exists():
        if method != "lora":
            raise TrainingFault("config", f"run {cfg.id} continues from a LoRA adapter ({init}) but trains the "
                                          "full model", fix="train it with --lora, or start it afresh")
        return init, None
    if not (init / "config.json").exists():
        raise TrainingFault("config", f"run {cfg.id} continues from {init}, which holds no model",
                            fix="start it afresh (refine --fresh), or train the run it continues again")
    return None, init


def final_model_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "model"


def has_final_model(run_dir: Path) -> bool:
    """The run finished: its final folder is complete (``format.json`` is written last)."""
    return (final_model_dir(run_dir) / "format.json").exists()


def save_final(run_dir: Path, model: Any, tokenizer: Any, fmt: PromptFormat, cfg: RunConfig, method: str) -> Path:
    """The final weights with the tokenizer and ``format.json`` (the prompt format export reproduces)."""
    out = final_model_dir(run_dir)
    tmp = Path(run_dir) / ".model-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    meta = {**fmt.to_json(), "method": method, "student": cfg.settings.student,
            "max_length": cfg.settings.max_length}
    (tmp / "format.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out
