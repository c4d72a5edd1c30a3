"""Issue 22 (4): an adapter leaves the Training tab as a zip, as a merged model, or (with a token) on the Hub."""

from __future__ import annotations

import re
import zipfile

from playwright.sync_api import expect


def _download(page, tmp_path, name: str):
    files = page.locator("#train-export-file")
    row = files.get_by_role("row", name=name)
    row.wait_for(timeout=60_000)
    with page.expect_download() as info:
        row.get_by_role("link").click()
    path = tmp_path / name
    assert info.value.suggested_filename == name
    info.value.save_as(path)
    return zipfile.ZipFile(path)


def test_download_the_adapter_then_merge_it_and_download_the_merged_model(page, make_adapter, tmp_path):
    make_adapter("export-lora")
    page.get_by_role("tab", name="Training").click()
    page.get_by_role("button", name="Refresh lists").click()
    page.locator("#train-adapters").get_by_text("export-lora").filter(visible=True).first.click()
    page.get_by_text("Export the selected adapter").click()

    page.locator("#train-export-zip").click()
    expect(page.locator("#train-export-status")).to_contain_text("zipped", timeout=60_000)
    with _download(page, tmp_path, "export-lora-adapter.zip") as archive:
        names = set(archive.namelist())
        assert {"export-lora/adapter_model.safetensors", "export-lora/adapter_config.json"} <= names
        assert "library_name: peft" in archive.read("export-lora/README.md").decode()

    page.locator("#train-export-merge").click()
    status = page.locator("#train-export-status")
    # The merge runs in the background and the page follows it, stage by stage.
    expect(status).to_contain_text(
        re.compile(r"loading the base model|folding|saving|zipping"), timeout=60_000
    )
    expect(status).to_contain_text("merged into its base", timeout=300_000)
    with _download(page, tmp_path, "export-lora-merged.zip") as archive:
        names = set(archive.namelist())
        for part in ("model.safetensors", "config.json", "tokenizer.json", "README.md"):
            assert f"export-lora-merged/{part}" in names, part
        assert "library_name: transformers" in archive.read("export-lora-merged/README.md").decode()

    # Pushing without a token says what is missing, and nothing is sent.
    page.locator("#train-push-repo input, #train-push-repo textarea").first.fill("me/export-lora")
    page.locator("#train-push").click()
    page.get_by_text("needs a write token").first.wait_for(timeout=30_000)
