"""Hub models (GPT-2 family) through the same wrapper as the zoo; offline they fail fast and say what to use."""

from __future__ import annotations

import os

from transformers import AutoTokenizer, GPT2LMHeadModel

OFFLINE_ALTERNATIVE = {"gpt2": "zoo/text-lm", "distilbert": "zoo/sentiment-clf"}
HUB_TIMEOUT_S = 5.0


class HubUnavailable(RuntimeError):
    pass


def _in_local_cache(name: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(name, "config.json"), str)


def _reachable(name: str) -> str | None:
    """None when the hub answers for `name`, else the reason it does not (within HUB_TIMEOUT_S)."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return "HF_HUB_OFFLINE=1 is set"
    from huggingface_hub import model_info

    try:
        model_info(name, timeout=HUB_TIMEOUT_S)
        return None
    except Exception as e:  # DNS failure, refused connection, timeout, 404, ...
        return f"{type(e).__name__}: {str(e)[:200]}"


def _require_hub(name: str, loader: str) -> None:
    if not _in_local_cache(name):
        reason = _reachable(name)
        if reason is not None:
            alternative = OFFLINE_ALTERNATIVE.get(name.split("/")[-1].split("-")[0], "zoo/text-lm")
            error = HubUnavailable(
                f"cannot load {name!r} from the Hugging Face hub ({reason}). Offline, use the zoo model "
                f"{loader}({alternative!r}) instead (`mechinterp zoo list` shows the zoo)."
            )
            error.reason = reason  # why the hub was unreachable, for callers that suggest their own model
            raise error


def load_hub_classifier(name: str):
    """A sequence classifier (e.g. distilbert-base-uncased-finetuned-sst-2-english) and its tokenizer."""
    from transformers import AutoModelForSequenceClassification

    _require_hub(name, "load_classifier")
    model = AutoModelForSequenceClassification.from_pretrained(name, attn_implementation="eager")
    return model, AutoTokenizer.from_pretrained(name)


def load_hub_gpt2(name: str) -> tuple[GPT2LMHeadModel, object]:
    """A GPT-2-family model and its tokenizer from the hub (or the local HF cache)."""
    _require_hub(name, "load_model")
    model = GPT2LMHeadModel.from_pretrained(name)
    if not isinstance(model, GPT2LMHeadModel):
        raise TypeError(f"{name} is not a GPT-2-architecture model")
    return model, AutoTokenizer.from_pretrained(name)
