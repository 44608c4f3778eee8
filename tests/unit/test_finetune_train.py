"""Fine-tuning: the config and its overrides, prefix-shared batches, and that sharing leaves the loss exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune.batches import IGNORE, Tokenised, collate, group, tokenise
from finetune.config import load_config
from finetune.errors import ConfigError
from finetune.render import Rendered
from tests.fixtures.tiny_llama import examples as _examples
from tests.fixtures.tiny_llama import tiny_model_dir  # noqa: F401  (a fixture)


def test_shipped_configs_load_and_overrides_apply() -> None:
    cfg = load_config(None, ["train.max_steps=7", "lora.target_modules=[q_proj, v_proj]", "train.learning_rate=1e-4",
                             "name=my-adapter"])
    assert (cfg.base, cfg.train.max_steps, cfg.lora.target_modules) == ("smollm2", 7, ["q_proj", "v_proj"])
    assert cfg.train.learning_rate == pytest.approx(1e-4) and cfg.name == "my-adapter"
    gpu = load_config(Path("finetune/configs/qwen-gpu.yaml"))
    assert gpu.base == "qwen2.5-1.5b" and gpu.data.n_synthetic > cfg.data.n_synthetic


@pytest.mark.parametrize(("override", "message"), [
    ("train.max_stepz=3", "max_stepz"),          # a typo is named, never ignored
    ("train.batch_size=zero", "batch_size"),      # a wrong type too
    ("train.batch_size=0", "batch_size"),         # and an impossible value
    ("max_steps", "key=value"),                   # not an override at all
    ("train=5", "train"),                         # a section replaced by a value
])
def test_bad_overrides_are_named(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_missing_config_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No fine-tuning config"):
        load_config(tmp_path / "nope.yaml")


class CharTokenizer:
    """One token per character (ids = code points), with offsets: enough to test the label split."""

    def __call__(self, text: str, **_: object) -> dict[str, list]:
        return {"input_ids": [ord(c) % 250 + 3 for c in text], "offset_mapping": [(i, i + 1) for i in range(len(text))]}


def test_only_the_completion_is_labelled() -> None:
    row = tokenise(Rendered(prompt="SYSTEM|user asks|", completion="answer"), CharTokenizer(), kind="assistant")
    assert row.first_label == len("SYSTEM|user asks|")
    assert [t for t in row.labels if t != IGNORE] == row.ids[row.first_label:]


def test_groups_share_the_longest_common_prefix_and_stop_before_targets() -> None:
    tok = CharTokenizer()
    rows = [tokenise(Rendered(f"SYSTEM TOOLS|{q}|", a), tok, kind="assistant")
            for q, a in [("one", "x"), ("two", "yy"), ("three", "zzz"), ("tw", "w")]]
    rows.append(tokenise(Rendered("RULES|r|", "{}"), tok, kind="rule_author"))
    groups = group(rows, batch_size=3, seed=1)
    assert sorted(len(g.tails) for g in groups) == [1, 1, 3]
    assistant = [g for g in groups if len(g.prefix) == len("SYSTEM TOOLS|")]
    assert len(assistant) == 2  # 4 assistant rows in groups of 3 share "SYSTEM TOOLS|"; the rule row stands alone
    for g in groups:
        for tail, labels in zip(g.tails, g.tail_labels, strict=True):
            assert len(tail) == len(labels) and any(label != IGNORE for label in labels)
    again = group(rows, batch_size=3, seed=1)
    assert [g.as_row() for g in again] == [g.as_row() for g in groups]  # seeded
    batch = collate([groups[0].as_row()], pad_id=0)
    assert batch["prefix_ids"].shape[0] == 1
    assert batch["tail_ids"].shape == batch["tail_labels"].shape == batch["tail_mask"].shape


def test_prefix_sharing_gives_the_full_sequence_loss_and_gradients() -> None:
    torch = pytest.importorskip("torch")
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from finetune.trainer import group_loss

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128))
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj"],
                                             lora_dropout=0.0, init_lora_weights=False))
    prefix = list(range(10, 40))
    tails = [[50, 51, 52, 60, 61], [53, 54, 70, 71, 72, 73, 74], [55, 80]]
    rows = []
    for tail, first_target in zip(tails, (3, 2, 1), strict=True):
        ids = prefix + tail
        labels = [IGNORE] * (len(prefix) + first_target) + tail[first_target:]
        rows.append(Tokenised(ids=ids, labels=labels, kind="assistant"))
    groups = group(rows, batch_size=3, seed=0)
    assert len(groups) == 1 and groups[0].prefix == prefix
    shared, count = group_loss(model, collate([groups[0].as_row()], pad_id=0))
    shared.backward()
    shared_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()

    # The reference: every example run in full, loss = mean over all labelled tokens.
    total, tokens = 0.0, 0
    for row in rows:
        logits = model(input_ids=torch.tensor([row.ids])).logits[0, :-1]
        targets = torch.tensor(row.labels[1:])
        total = total + torch.nn.functional.cross_entropy(logits, targets, ignore_index=IGNORE, reduction="sum")
        tokens += int((targets != IGNORE).sum())
    full = total / tokens
    full.backward()
    assert count == tokens
    assert float(shared) == pytest.approx(float(full), rel=1e-5)
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert torch.allclose(shared_grads[name], param.grad, atol=1e-6), name


def test_a_frozen_prefix_gives_the_same_loss_value() -> None:
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    from finetune.trainer import _prefix, group_loss

    torch.manual_seed(1)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=200, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2))
    rows = [Tokenised(ids=list(range(5, 25)) + tail, labels=[IGNORE] * 21 + tail[1:], kind="a")
            for tail in ([40, 41, 42], [43, 44, 45, 46])]
    batch = collate([group(rows, batch_size=2, seed=0)[0].as_row()], pad_id=0)
    exact, _ = group_loss(model, batch)
    frozen, _ = group_loss(model, batch, prefix_state=_prefix(model, batch["prefix_ids"], grad=False))
    assert float(frozen) == pytest.approx(float(exact), rel=1e-6)


def test_train_writes_an_adapter_metrics_and_a_ledger_row_and_resumes(
        tiny_model_dir: Path, tmp_path: Path, sqlite_engine: object) -> None:  # noqa: F811
    import json

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from finetune.train import train
    from ledger.models import Decision

    data = tmp_path / "set"
    data.mkdir()
    (data / "train.jsonl").write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in _examples(12)))
    overrides = [f"model_dir={tiny_model_dir}", f"data.dataset={data}", "export_gguf=false", "name=tiny-crm",
                 f"output_dir={tmp_path / 'run'}", "train.max_steps=4", "train.save_steps=2", "train.batch_size=3",
                 "train.logging_steps=1", "lora.target_modules=[q_proj, v_proj]", "data.validation_share=0.2"]
    result = train(load_config(None, overrides), progress=False)
    run = Path(result.run_dir)
    assert result.steps == 4 and result.name == "tiny-crm" and result.resumed_from is None
    assert (run / "adapter" / "adapter_config.json").exists()
    assert (run / "adapter" / "adapter_model.safetensors").exists()
    assert result.examples + result.validation_examples == 12 and result.validation_examples > 0
    assert result.loss_first is not None and result.validation_loss_after is not None
    assert result.seconds_per_step > 0 and result.example_tokens_per_second > result.tokens_per_second
    assert (run / "loss.svg").read_text().lstrip().startswith("<?xml")
    assert "max_steps: 4" in (run / "config.yaml").read_text()
    with Session(sqlite_engine) as session:  # type: ignore[arg-type]
        row = session.scalar(select(Decision).where(Decision.kind == "finetune_run"))
    assert row is not None and row.model_id == "tiny-crm" and row.output["steps"] == 4

    # Interrupted after step 2: the rerun of the same config continues from the checkpoint.
    import shutil

    shutil.rmtree(run / "checkpoints" / "checkpoint-4")
    again = train(load_config(None, overrides), progress=False)
    assert again.resumed_from is not None and again.resumed_from.endswith("checkpoint-2") and again.steps == 4

    # The same folder with another config is refused rather than mixed.
    with pytest.raises(Exception, match="another config"):
        train(load_config(None, [*overrides[:-1], "lora.target_modules=[q_proj]"]), progress=False)


def test_a_run_prepared_here_trains_elsewhere_and_is_imported_back(
        tiny_model_dir: Path, tmp_path: Path, sqlite_engine: object) -> None:  # noqa: F811
    """prepare -> ``python -m finetune.fit`` in a child with no crmind settings or database -> finish."""
    import json
    import os
    import subprocess
    import sys

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from finetune.errors import FinetuneError
    from finetune.train import finish, prepare
    from ledger.models import Decision

    data = tmp_path / "set"
    data.mkdir()
    (data / "train.jsonl").write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in _examples(9)))
    overrides = [f"model_dir={tiny_model_dir}", f"data.dataset={data}", "export_gguf=false", "name=tiny-remote",
                 f"output_dir={tmp_path / 'run'}", "train.max_steps=2", "train.batch_size=3",
                 "train.logging_steps=1", "lora.target_modules=[q_proj, v_proj]", "data.validation_share=0.3"]
    folder, _ = prepare(load_config(None, overrides))
    assert (folder / "prepared.json.gz").is_file() and not (folder / "adapter").exists()
    with pytest.raises(FinetuneError, match="prepared but not trained"):
        finish(folder)

    # The training machine: only the run folder and the base; no database, no data dir of crmind's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRMIND_")}
    env["CRMIND_DATA_DIR"] = str(tmp_path / "elsewhere")
    proc = subprocess.run([sys.executable, "-m", "finetune.fit", str(folder), "--model-dir", str(tiny_model_dir),
                           "--no-progress"], env=env, capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    fitted = json.loads((folder / "fit.json").read_text())
    assert f"\"steps\": {fitted['steps']}" in proc.stdout  # the result is also printed
    assert fitted["steps"] == 2 and fitted["device"] == "cpu" and fitted["validation_loss_after"] is not None
    assert not (tmp_path / "elsewhere").exists()  # it wrote nothing outside the run folder

    result = finish(folder)
    assert result.name == "tiny-remote" and result.steps == 2 and result.examples + result.validation_examples == 9
    assert json.loads((folder / "metrics.json").read_text())["loss_last"] == fitted["loss_last"]
    with Session(sqlite_engine) as session:  # type: ignore[arg-type]
        row = session.scalar(select(Decision).where(Decision.model_id == "tiny-remote"))
    assert row is not None and row.kind == "finetune_run"


def test_fit_names_a_missing_or_corrupt_run(tmp_path: Path) -> None:
    from finetune.fit import main

    assert main([str(tmp_path), "--model-dir", str(tmp_path)]) == 2  # no config.yaml
    (tmp_path / "config.yaml").write_text("base: smollm2\n")
    (tmp_path / "prepared.json.gz").write_bytes(b"not gzip")
    assert main([str(tmp_path), "--model-dir", str(tmp_path)]) == 2
