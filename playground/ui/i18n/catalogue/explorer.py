"""The token explorer's words (a sub-tab of Side by side): why the model said what it said."""

EN = {
    "explorer.tab": "Token explorer",
    "explorer.intro": (
        "Generate an answer, then click any token: the chart shows the candidates the model weighed "
        "at that step, their raw probability and the probability after temperature, top-k, top-p, "
        "min-p and repetition penalty. Move a slider to see the filters reshape that step at once "
        "(the model does not run again). Pick another candidate and press Branch to see where the "
        "answer would have gone. Colours: green = the model was sure of the token, red = it was a long shot; "
        "Chinese characters split over several byte tokens are shown whole, with their tokens on hover."
    ),
    "explorer.instruction": "Instruction",
    "explorer.input": "Input (optional)",
    "explorer.mode": "Decoding",
    "explorer.temperature": "Temperature",
    "explorer.top_k": "Top-k (0 = off)",
    "explorer.top_p": "Top-p",
    "explorer.min_p": "Min-p (0 = off)",
    "explorer.repetition_penalty": "Repetition penalty",
    "explorer.max_new": "Max new tokens",
    "explorer.seed": "Seed",
    "explorer.run": "Generate",
    "explorer.answers": "Answers (click a token)",
    "explorer.chart": "Candidates at the chosen step",
    "explorer.branch_token": "Continue with this candidate instead",
    "explorer.branch": "Branch",
    "explorer.entropy": "Entropy and chosen-token probability per step",
    "explorer.nothing": "Generate an answer first, then click one of its tokens.",
    "explorer.engine_note": (
        "_Candidates from the external engine at {url} (its `logprobs`): only its top candidates "
        "per token, and its probabilities are the model's raw ones, so for the settings this answer "
        'used the "after processors" bars equal the raw ones (moving a slider recomputes them '
        "from these candidates); entropy is over the kept candidates only; a branch continues on "
        "the engine from prompt + prefix + candidate, and may differ even at the token taken._"
    ),
    "explorer.pick_token": "Click a token of an answer first.",
    "explorer.no_such_answer": "That answer is no longer on the page; generate again.",
    "explorer.too_many_branches": "At most {most} answers are kept; generate again to start over.",
    "explorer.answer": "Answer {n}",
    "explorer.branch_of": "Branch of answer {parent} at token {step}",
    "explorer.shared_prefix": "shared with the answer it branched from",
    "explorer.step_info": (
        "Answer {answer}, token {step}: `{token}` · raw probability {prob:.1%} · entropy {entropy:.2f} nats · "
        "the kept top {kept} candidates hold {mass:.1%} of the probability"
    ),
    "explorer.series.raw": "raw (model)",
    "explorer.series.after": "after processors",
    "explorer.removed": "removed",
    "explorer.sampled": "taken",
    "explorer.axis.probability": "probability",
    "explorer.axis.step": "token",
    "explorer.axis.entropy": "entropy (nats)",
    "explorer.series.entropy": "entropy, answer {n}",
    "explorer.series.chosen": "chosen p, answer {n}",
    "explorer.stats": "{tokens} tokens · ended by {reason} · seed {seed}",
}

ZH_TW = {
    "explorer.tab": "逐詞元探索",
    "explorer.intro": (
        "先產生一個回答，再點選任一個詞元：圖表會列出模型在那一步考慮的候選詞元，顯示它們的原始機率，"
        "以及經過溫度、top-k、top-p、min-p 與重複懲罰之後的機率。移動滑桿，就能立刻看到過濾規則如何改變那一步"
        "（不會重新執行模型）。選擇另一個候選詞元並按下「分支」，看看回答會往哪裡走。"
        "顏色：綠色表示模型對這個詞元很有把握，紅色表示機率很低；被拆成多個位元組詞元的中文字會合併顯示，"
        "滑鼠移上去可看到原始詞元。"
    ),
    "explorer.instruction": "指令",
    "explorer.input": "輸入（選填）",
    "explorer.mode": "解碼方式",
    "explorer.temperature": "溫度",
    "explorer.top_k": "Top-k（0 = 關閉）",
    "explorer.top_p": "Top-p",
    "explorer.min_p": "Min-p（0 = 關閉）",
    "explorer.repetition_penalty": "重複懲罰",
    "explorer.max_new": "最多新詞元數",
    "explorer.seed": "隨機種子",
    "explorer.run": "產生",
    "explorer.answers": "回答（點選詞元）",
    "explorer.chart": "所選步驟的候選詞元",
    "explorer.branch_token": "改用這個候選詞元繼續",
    "explorer.branch": "分支",
    "explorer.entropy": "每一步的熵與所選詞元機率",
    "explorer.nothing": "請先產生回答，再點選其中一個詞元。",
    "explorer.engine_note": (
        "_候選詞元來自外部引擎 {url}（它的 `logprobs`）：每個詞元只有它回傳的前幾名候選，"
        "而且機率是模型的原始機率，所以就這個回答所用的設定而言，「處理後」長條與原始長條相同"
        "（移動滑桿時會從這些候選重新計算）；熵只計入保留的候選；分支會在引擎上從「提示＋前綴＋候選」"
        "接著生成，即使選的是原本的詞元，結果也可能不同。_"
    ),
    "explorer.pick_token": "請先點選回答中的一個詞元。",
    "explorer.no_such_answer": "這個回答已不在頁面上，請重新產生。",
    "explorer.too_many_branches": "最多保留 {most} 個回答；請重新產生以重新開始。",
    "explorer.answer": "回答 {n}",
    "explorer.branch_of": "回答 {parent} 在第 {step} 個詞元的分支",
    "explorer.shared_prefix": "與來源回答相同的部分",
    "explorer.step_info": (
        "回答 {answer}，第 {step} 個詞元：`{token}` · 原始機率 {prob:.1%} · 熵 {entropy:.2f} nats · "
        "保留的前 {kept} 個候選詞元共占 {mass:.1%} 的機率"
    ),
    "explorer.series.raw": "原始（模型）",
    "explorer.series.after": "經過處理後",
    "explorer.removed": "已移除",
    "explorer.sampled": "已選取",
    "explorer.axis.probability": "機率",
    "explorer.axis.step": "詞元",
    "explorer.axis.entropy": "熵（nats）",
    "explorer.series.entropy": "熵，回答 {n}",
    "explorer.series.chosen": "所選機率，回答 {n}",
    "explorer.stats": "{tokens} 個詞元 · 結束原因：{reason} · 種子 {seed}",
}
