"""Issue 22 (2): Hugging Face datasets are data wherever JSON / CSV is: save_to_disk folders,
parquet files, hub ids (cache only, offline here), checked row by row the same way."""

from __future__ import annotations

import json
import os

import datasets
import pytest

from playground.data import datasets_dir, list_examples, load_dataset
from playground.errors import DatasetError

ROWS = [
    {"instruction": f"Continue poem {i}", "input": "床前明月光", "output": f"疑是地上霜 {i}"}
    for i in range(5)
]


@pytest.fixture
def as_json(tmp_path):
    path = tmp_path / "poems.json"
    path.write_text(json.dumps(ROWS, ensure_ascii=False), encoding="utf-8")
    return load_dataset(path)


def test_a_save_to_disk_folder_reads_like_the_same_rows_in_json(tmp_path, as_json):
    folder = tmp_path / "poems-saved"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(folder))
    loaded = load_dataset(folder)
    assert loaded.examples == as_json.examples and loaded.shape == as_json.shape == "alpaca"
    assert loaded.name == "poems-saved" and loaded.sha256 and loaded.sha256 != as_json.sha256

    # A DatasetDict: its train split, and a note saying so.
    split = tmp_path / "poems-splits"
    datasets.DatasetDict(
        {"test": datasets.Dataset.from_list(ROWS[:2]), "train": datasets.Dataset.from_list(ROWS)}
    ).save_to_disk(str(split))
    both = load_dataset(split)
    assert both.examples == as_json.examples
    assert any("'train' split" in note for note in both.notes)


def test_a_parquet_file_reads_like_the_same_rows_in_json(tmp_path, as_json):
    path = tmp_path / "poems.parquet"
    datasets.Dataset.from_list(ROWS).to_parquet(str(path))
    loaded = load_dataset(path)
    assert loaded.examples == as_json.examples
    assert load_dataset(path).sha256 == loaded.sha256  # the same file, the same hash


def test_row_level_problems_are_named_as_for_json(tmp_path):
    rows = [{"id": "a", "instruction": "x", "output": "y"}, {"id": "a", "instruction": "z", "output": "w"}]
    path = tmp_path / "dupes.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    with pytest.raises(DatasetError, match=r"dupes.parquet, row 2: repeats the id 'a' of row 1"):
        load_dataset(path)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DatasetError, match="broken.parquet: cannot be read as a parquet file"):
        load_dataset(tmp_path / "broken.parquet")
    empty = tmp_path / "empty.parquet"
    datasets.Dataset.from_list([{"instruction": "x"}]).select([]).to_parquet(str(empty))
    with pytest.raises(DatasetError, match="empty.parquet: contains no rows"):
        load_dataset(empty)


def test_a_hub_id_missing_from_the_cache_offline_says_how_to_get_it(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DatasetError) as caught:
        load_dataset("hf:nobody-here/no-such-set")
    message = str(caught.value)
    assert message.startswith("hf:nobody-here/no-such-set: could not be loaded")
    assert "hf download --repo-type dataset nobody-here/no-such-set" in message and "save_to_disk" in message
    with pytest.raises(DatasetError, match="hf:ORG/NAME"):
        load_dataset("hf:../../etc")


def test_pages_offer_only_data_sets_inside_their_folders(tmp_path):
    from playground.ui.data_picker import resolve_path

    datasets.Dataset.from_list(ROWS).save_to_disk(str(datasets_dir() / "class-poems"))
    datasets.Dataset.from_list(ROWS).to_parquet(str(datasets_dir() / "class-poems.parquet"))
    outside = tmp_path / "secret-saved"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(outside))
    os.symlink(outside, datasets_dir() / "escape")
    (datasets_dir() / "notes.txt").write_text("not data", encoding="utf-8")

    names = [p.name for p in list_examples()]
    assert "class-poems" in names and "class-poems.parquet" in names
    assert "escape" not in names and "notes.txt" not in names
    assert load_dataset(resolve_path("class-poems", None)).examples == load_dataset(outside).examples
    for bad in ("escape", "../secret-saved", str(outside)):
        with pytest.raises(Exception, match="No demo data set"):
            resolve_path(bad, None)


def test_training_reads_a_save_to_disk_folder(tmp_path):
    from playground.training.config import TrainingConfig
    from playground.training.dataset import prepare_data

    folder = tmp_path / "train-saved"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(folder))
    data = prepare_data(TrainingConfig(model="m", data=str(folder), eval_size=1))
    assert len(data.train) == 4 and len(data.eval) == 1 and data.dataset.name == "train-saved"
