"""The training flow in a Traditional Chinese browser: the tab's words are Chinese, none left in English."""

from __future__ import annotations

import re
from pathlib import Path

from playground.ui.i18n.catalogue import training as words
from tests.helpers import wait_for

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TRAINING_TAB = re.compile("^(訓練|Training)$")


def _english_left(body: str) -> list[str]:
    """English words of the tab (ones Chinese does not share) that the page still shows."""
    left = []
    for key, english in words.EN.items():
        chinese = words.ZH_TW[key]
        if "{" in english or len(english) < 8 or english in chinese:
            continue  # filled-in messages, short technical names (r, alpha, Log) kept as they are
        if english.lstrip("# ") in body:
            left.append(english)
    return left


def _open(browser, url: str, locale: str):
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector("#model-status")
    page.get_by_role("tab", name=TRAINING_TAB).click()
    return context, page


def _chart_points(page) -> int:
    return page.evaluate(
        "() => { const g = document.querySelector('#train-chart .js-plotly-plot');"
        " return g && g.data && g.data[0] && g.data[0].x ? g.data[0].x.length : 0 }"
    )


def _chart_words(page) -> list[str]:
    """The curve's name and the axis titles, as plotly holds them."""
    return page.evaluate(
        "() => { const g = document.querySelector('#train-chart .js-plotly-plot');"
        " return [g.data[0].name, g.layout.xaxis.title.text, g.layout.yaxis.title.text] }"
    )


def test_training_flow_in_traditional_chinese(browser, app_server):
    ctx, url = app_server
    context, page = _open(browser, url, "zh-TW")
    page.locator("#train-start").get_by_text("開始訓練").wait_for()
    for label in (
        "學習率",
        "只用前 N 筆範例（0 = 全部）",
        "訓練資料：範例資料集",
        "打包範例（不補齊；損失相同，傳遞次數更少）",
    ):
        page.get_by_text(label, exact=True).first.wait_for()
    assert page.locator("#train-loss-on input").input_value() == "只算回答"
    assert page.locator("#train-preset input").input_value() == "CPU 示範（135M，約一分鐘）"
    page.locator("#train-jobs").get_by_text("編號").first.wait_for()  # the table is filled per request
    assert _english_left(page.locator("body").inner_text()) == []

    page.locator("#train-output textarea, #train-output input").first.fill("zh-lora")
    page.locator("#train-max-steps input").fill("400")
    page.locator("#train-start").click()
    status = page.locator("#train-status")
    status.get_by_text("打包批次", exact=False).wait_for(timeout=180_000)
    first = wait_for(lambda: _chart_points(page), timeout=180)
    wait_for(lambda: _chart_points(page) > first, timeout=180)
    text = status.inner_text()
    assert "狀態：" in text and "執行中" in text and re.search(r"第 \d+/400 步", text), text
    assert _chart_words(page) == ["訓練損失", "最佳化步數", "損失"]
    assert _english_left(page.locator("body").inner_text()) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "training-zh-TW.png"), full_page=True)

    page.locator("#train-stop").click()
    job = wait_for(
        lambda: next(
            (j for j in ctx.jobs.jobs() if j.output.endswith("zh-lora") and j.status == "stopped"), None
        ),
        timeout=120,
    )
    status.get_by_text("已停止", exact=False).wait_for()
    context.close()

    # The same job followed from an English page: its words are English there.
    context, page = _open(browser, url, "en-US")
    page.locator("#train-jobs").get_by_text(job.id).filter(visible=True).first.click()
    page.locator("#train-status").get_by_text("stopped", exact=False).wait_for()
    wait_for(lambda: _chart_points(page) > 0, timeout=60)
    assert _chart_words(page) == ["training loss", "optimizer step", "loss"]
    assert "狀態" not in page.locator("#train-status").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "training-en.png"), full_page=True)
    context.close()
