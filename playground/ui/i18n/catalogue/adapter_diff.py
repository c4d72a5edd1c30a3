"""Adapter vs base per character: the heatmap on the Leaderboard and in Side by side's Base vs adapters."""

EN = {
    "adapter_diff.title": "What the adapter changed, per reference character (blue = more likely with the adapter)",
    "adapter_diff.colour_title": "adapter NLL − base NLL (nats)",
    "adapter_diff.hover": (
        "%{customdata[0]}<br>base NLL %{customdata[1]:.2f}<br>adapter NLL %{customdata[2]:.2f}"
        "<br>difference %{z:+.2f}"
    ),
    "adapter_diff.summary": (
        "Adapter − base NLL over the reference: {total} nats; the adapter made {more} of {count} characters "
        "more likely."
    ),
    "adapter_diff.row": "#{row} · {adapter}",
    "adapter_diff.compare_note": (
        "Per-character heatmap: each adapter against the base model on the references of the first "
        "{rows} scored rows (both on the adapter's prompt)."
    ),
    "adapter_diff.no_reference": "This example has no reference, so there is nothing to score against the base model.",
    "adapter_diff.other_model": "This run used {model}; load it at the top of the page to compare its adapter with the base model.",
    "adapter_diff.missing_adapter": "The adapter {adapter} of this run is not available any more: {problem}",
    "adapter_diff.heading": "Adapter {adapter} vs the base model, on this example's reference",
}

ZH_TW = {
    "adapter_diff.title": "轉接器對參考答案每個字的影響（藍色 = 加上轉接器後更可能）",
    "adapter_diff.colour_title": "轉接器 NLL − 基礎模型 NLL（nats）",
    "adapter_diff.hover": (
        "%{customdata[0]}<br>基礎模型 NLL %{customdata[1]:.2f}<br>轉接器 NLL %{customdata[2]:.2f}"
        "<br>差值 %{z:+.2f}"
    ),
    "adapter_diff.summary": "整段參考答案的轉接器 − 基礎模型 NLL：{total} nats；轉接器讓 {count} 個字中的 {more} 個更可能出現。",
    "adapter_diff.row": "#{row} · {adapter}",
    "adapter_diff.compare_note": (
        "逐字熱圖：前 {rows} 列有參考答案的結果，每個轉接器與基礎模型比較（兩者都用該轉接器的提示）。"
    ),
    "adapter_diff.no_reference": "這筆範例沒有參考答案，無法與基礎模型比較。",
    "adapter_diff.other_model": "這次評估用的是 {model}；請先在頁面上方載入它，才能比較它的轉接器與基礎模型。",
    "adapter_diff.missing_adapter": "這次評估的轉接器 {adapter} 已無法使用：{problem}",
    "adapter_diff.heading": "轉接器 {adapter} 與基礎模型在這筆範例參考答案上的比較",
}
