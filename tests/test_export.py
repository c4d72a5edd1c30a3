"""Taking adapters out of the playground from the app: who may, and merging in the background."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from playground.errors import PlaygroundError
from playground.identity import Owner
from playground.paths import adapters_dir
from playground.training import Trainer, TrainingJob
from tests.test_training import data_file, make_config, one_thread  # noqa: F401 - fixtures

ALICE, BOB, ADMIN = Owner("user:alice"), Owner("user:bob"), Owner("user:root", is_admin=True)


@pytest.fixture(scope="module")
def trained(tiny_llama, data_file, tmp_path_factory):  # noqa: F811 - the fixture imported above
    root = tmp_path_factory.mktemp("export")
    config = make_config(tiny_llama, data_file, str(root / "adapters" / "colours"), max_steps=4, save_every=0)
    return Path(Trainer(config, root / "job").run().adapter)


def _install(trained: Path, name: str, job_owner: str | None) -> Path:
    """The trained adapter in this test's adapters folder, saved by a job of `job_owner` (None: no job)."""
    folder = adapters_dir() / name
    shutil.copytree(trained, folder)
    meta = json.loads((folder / "playground.json").read_text(encoding="utf-8"))
    meta["job"] = TrainingJob.create(make_config(Path("m"), Path("d"), "adapters/x"), owner=job_owner).id
    if job_owner is None:
        meta.pop("job")
    (folder / "playground.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder


def test_only_the_adapters_owner_or_an_admin_may_take_it_out(trained):
    from playground.training.export import adapter_owner, owned_adapter

    mine = _install(trained, "alice-lora", "user:alice")
    assert adapter_owner(mine) == "user:alice"
    assert owned_adapter("alice-lora", ALICE) == mine
    assert owned_adapter("alice-lora", ADMIN) == mine
    with pytest.raises(PlaygroundError, match="belongs to alice"):
        owned_adapter("alice-lora", BOB)
    # Made outside any job of this playground: nobody's, so only an admin takes it out.
    _install(trained, "loose", None)
    with pytest.raises(PlaygroundError, match="only its owner or an admin"):
        owned_adapter("loose", ALICE)
    assert owned_adapter("loose", ADMIN).name == "loose"
    # Names only: no paths, no escapes, nothing missing.
    for bad in ("../alice-lora", str(mine), "a/b", ""):
        with pytest.raises(PlaygroundError, match="cannot be a adapter name"):
            owned_adapter(bad, ADMIN)
    with pytest.raises(PlaygroundError, match="No adapter"):
        owned_adapter("nobody", ADMIN)


def test_a_crafted_job_name_in_the_metadata_gives_no_owner(trained):
    from playground.training.export import adapter_owner

    folder = _install(trained, "crafted", "user:alice")
    meta = json.loads((folder / "playground.json").read_text(encoding="utf-8"))
    (folder / "playground.json").write_text(json.dumps({**meta, "job": "../../etc"}), encoding="utf-8")
    assert adapter_owner(folder) is None


def test_a_background_merge_gives_a_zip_of_the_merged_model(trained, tiny_llama, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from playground.training.export import merged_folder
    from playground.training.merge_task import start_merge

    folder = _install(trained, "merge-me", None)
    task = start_merge(folder)
    assert start_merge(folder) is task  # a second request follows the merge already running
    assert task.done.wait(120) and task.error is None and task.stage == "done"
    with zipfile.ZipFile(task.result) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path)
    assert {"merge-me-merged/model.safetensors", "merge-me-merged/README.md"} <= names
    unpacked = tmp_path / "merge-me-merged"
    ids = torch.tensor([[1, 5, 9, 20, 33]])
    with torch.no_grad():
        want = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), folder).eval()(ids)
        got = AutoModelForCausalLM.from_pretrained(unpacked).eval()(ids)
    assert torch.allclose(want.logits, got.logits, atol=1e-4)

    # A merge that fails (its base model is gone) leaves the earlier merged model and zip as they were.
    before = (merged_folder("merge-me") / "model.safetensors").read_bytes()
    meta = json.loads((folder / "playground.json").read_text(encoding="utf-8"))
    (folder / "playground.json").write_text(json.dumps({**meta, "base_model": str(tmp_path / "gone")}))
    failed = start_merge(folder)
    assert failed is not task and failed.done.wait(60) and failed.error is not None
    assert (merged_folder("merge-me") / "model.safetensors").read_bytes() == before
    assert zipfile.ZipFile(task.result).testzip() is None
    assert sorted(p.name for p in merged_folder("x").parent.iterdir()) == [
        "merge-me-merged",
        "merge-me-merged.zip",
    ]
