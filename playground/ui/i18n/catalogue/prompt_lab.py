"""The Prompt lab tab's words. Braces in labels ({examples}) are template syntax the user types;
the browser shows them as written."""

from playground.prompts.templates import TEMPLATES

EN = {
    # The tab's own label, for app.py's list of tabs.
    "prompt_lab.tab": "Prompt lab",
    # Data
    "prompt_lab.data": "Data",
    "prompt_lab.test_set.example": "Test set: demo set",
    "prompt_lab.test_set.upload": "Test set: or upload JSON / JSONL / CSV / parquet",
    "prompt_lab.references": "Ground-truth file (optional, one answer per line)",
    "prompt_lab.train_set.example": "Examples from: demo set",
    "prompt_lab.train_set.upload": "Examples from: or upload JSON / JSONL / CSV / parquet",
    "prompt_lab.train_set.none": "(none)",
    "prompt_lab.train_set.note": (
        "Without a training set the examples come from the test set (never the question)."
    ),
    # Prompt
    "prompt_lab.prompt": "Prompt",
    "prompt_lab.template": "Template",
    "prompt_lab.template.custom": "custom (below)",
    **{f"prompt_lab.template.{tmpl.name}": f"{tmpl.name}: {tmpl.notes}" for tmpl in TEMPLATES.values()},
    "prompt_lab.custom": "Custom template: {system} {examples} {instruction} {input}",
    "prompt_lab.system": "System text (blank = the template's own)",
    "prompt_lab.suffix": "Prompt variant: sentence added to the system text",
    "prompt_lab.suffix.placeholder": "This is very important to my career.",
    # Examples
    "prompt_lab.examples": "Examples",
    "prompt_lab.k": "k in-context examples",
    "prompt_lab.seed": "Seed (random k)",
    "prompt_lab.selection": "Which examples",
    "prompt_lab.selection.first": "first k",
    "prompt_lab.selection.last": "last k",
    "prompt_lab.selection.random": "random k (seed)",
    "prompt_lab.selection.similar": "most similar to the question (BM25)",
    "prompt_lab.selection.manual": "picked by hand",
    "prompt_lab.format_preset": "Example format preset",
    "prompt_lab.format.user_assistant": "USER / ASSISTANT",
    "prompt_lab.format.numbered": "numbered list",
    "prompt_lab.format.qa": "Q: / A:",
    "prompt_lab.separator": "Between examples",
    "prompt_lab.separator.newline": "new line",
    "prompt_lab.separator.blank_line": "blank line",
    "prompt_lab.separator.space": "space",
    "prompt_lab.example_format": "Example format: {index} {instruction} {input} {output}",
    "prompt_lab.example_format.note": (
        "With the model's chat template each example is a user turn and an assistant reply, so "
        "the example format applies to raw templates. There `{examples}` marks where the block "
        "goes; without it the block comes first."
    ),
    "prompt_lab.manual_ids": "Hand-picked example ids, in order (or click rows below)",
    "prompt_lab.pool_table": "Training set (click a row to add it)",
    # Chain of thought
    "prompt_lab.cot": "Chain of thought",
    "prompt_lab.trigger": "Trigger (ends the prompt)",
    "prompt_lab.worked": (
        "Worked example (optional): a question, the trigger, then the reasoning and answer"
    ),
    # Trying one question
    "prompt_lab.query": "Test question",
    "prompt_lab.preview": "Exact text sent to the model",
    "prompt_lab.max_new": "Max new tokens",
    "prompt_lab.try": "Try on this question",
    "prompt_lab.stop": "Stop",
    "prompt_lab.answer": "Answer (greedy)",
    "prompt_lab.try.starting": "starting…",
    "prompt_lab.try.ends_at": " · ends at {stops}",
    # Recipes
    "prompt_lab.recipes": "Recipes",
    "prompt_lab.recipe_name": "Recipe name",
    "prompt_lab.save": "Save",
    "prompt_lab.saved_recipes": "Saved recipes",
    "prompt_lab.load": "Load",
    "prompt_lab.recipe.saved": "Saved recipe **{name}**.",
    "prompt_lab.recipe.loaded": "Loaded recipe **{name}**.",
    # Evaluate
    "prompt_lab.evaluate_section": "Evaluate: zero-shot and each k over the test set",
    "prompt_lab.metrics": "Metrics",
    "prompt_lab.ks": "k values (zero-shot always runs; blank = the k above)",
    "prompt_lab.seeds": "Seeds (random k only)",
    "prompt_lab.limit": "Limit (first N questions, 0 = all)",
    "prompt_lab.evaluate": "Evaluate",
    "prompt_lab.cancel": "Cancel",
    "prompt_lab.summary": "Per k: mean and std over seeds",
    "prompt_lab.chart_metric": "Chart metric",
    "prompt_lab.eval.no_test_set": "Pick a test set first.",
    "prompt_lab.eval.no_metric": "Tick at least one metric.",
    "prompt_lab.eval.no_manual_ids": "Pick the examples by hand first (or choose another selection).",
    "prompt_lab.eval.done": (
        "**Done:** {runs} run(s) on {dataset} ({questions} questions each), stored on the leaderboard."
    ),
    "prompt_lab.eval.cancelled": (
        "**Cancelled.** Finished runs are kept {runs} run(s) on {dataset} ({questions} questions "
        "each), stored on the leaderboard."
    ),
    "prompt_lab.eval.cancelling": "Cancelling after the current batch…",
    "prompt_lab.summary.empty": "No runs yet.",
    "prompt_lab.chart.empty": "Run an evaluation to see the metric against k",
    "prompt_lab.chart.title": "{metric} against k ({better}), mean ± std over seeds; k=0 is zero-shot",
    "prompt_lab.chart.lower": "lower is better",
    "prompt_lab.chart.higher": "higher is better",
    "prompt_lab.chart.x": "k (in-context examples)",
    # Lines the server writes about the model, the question and the prompt
    "prompt_lab.model.none": (
        "**No model loaded.** Load one at the top of the page (the preview works without it)."
    ),
    "prompt_lab.model.line": (
        "Model: **{name}** · context {context} tokens (change it at the top of the page)"
    ),
    "prompt_lab.query.line": "**Question id {id}** · reference answer: {reference}",
    "prompt_lab.query.no_reference": "(none)",
    "prompt_lab.preview.no_model": (
        "{chars} characters · **no model loaded**, so no token count "
        "(and the chat template is shown as plain text). Load one at the top of the page."
    ),
    "prompt_lab.preview.tokens": (
        "**{tokens} tokens** (+ {new} new) of {context} · {count} example(s): {ids}"
    ),
    "prompt_lab.preview.no_examples": "none",
}

ZH_TW = {
    "prompt_lab.tab": "提示詞實驗室",
    # 資料
    "prompt_lab.data": "資料",
    "prompt_lab.test_set.example": "測試集：範例資料集",
    "prompt_lab.test_set.upload": "測試集：或上傳 JSON / JSONL / CSV / parquet",
    "prompt_lab.references": "標準答案檔（選填，每行一個答案）",
    "prompt_lab.train_set.example": "範例來源：範例資料集",
    "prompt_lab.train_set.upload": "範例來源：或上傳 JSON / JSONL / CSV / parquet",
    "prompt_lab.train_set.none": "（無）",
    "prompt_lab.train_set.note": "沒有選訓練集時，範例取自測試集（但絕不會用到正在問的那一題）。",
    # 提示詞
    "prompt_lab.prompt": "提示詞",
    "prompt_lab.template": "範本",
    "prompt_lab.template.custom": "自訂（在下方輸入）",
    "prompt_lab.template.chat": "chat：模型自己的對話範本（來自它的 tokenizer）。",
    "prompt_lab.template.taiwan-llama": "taiwan-llama：台大 ADL 作業用的 Taiwan-LLaMa v2.0 範本。",
    "prompt_lab.template.alpaca": "alpaca：Instruction/Input/Output，給 StableLM-3B-4e1t 這類基礎模型用。",
    "prompt_lab.template.plain": "plain：原文照送，不加任何包裝。",
    "prompt_lab.custom": "自訂範本：{system} {examples} {instruction} {input}",
    "prompt_lab.system": "系統提示詞（留白 = 使用範本內建的）",
    "prompt_lab.suffix": "提示詞變化：加在系統提示詞後面的一句話",
    "prompt_lab.suffix.placeholder": "這對我的職涯非常重要。",
    # 範例
    "prompt_lab.examples": "範例",
    "prompt_lab.k": "k 個情境內範例（in-context examples）",
    "prompt_lab.seed": "隨機種子（隨機 k 個）",
    "prompt_lab.selection": "選哪些範例",
    "prompt_lab.selection.first": "前 k 個",
    "prompt_lab.selection.last": "最後 k 個",
    "prompt_lab.selection.random": "隨機 k 個（依隨機種子）",
    "prompt_lab.selection.similar": "和題目最相似的（BM25）",
    "prompt_lab.selection.manual": "手動挑選",
    "prompt_lab.format_preset": "範例格式預設",
    "prompt_lab.format.user_assistant": "USER / ASSISTANT",
    "prompt_lab.format.numbered": "編號清單",
    "prompt_lab.format.qa": "Q: / A:",
    "prompt_lab.separator": "範例之間的分隔",
    "prompt_lab.separator.newline": "換行",
    "prompt_lab.separator.blank_line": "空一行",
    "prompt_lab.separator.space": "空格",
    "prompt_lab.example_format": "範例格式：{index} {instruction} {input} {output}",
    "prompt_lab.example_format.note": (
        "使用模型的對話範本時，每個範例都是一輪使用者提問加一則助理回覆，所以範例格式只套用在原始"
        "（raw）範本上。在原始範本裡 `{examples}` 標出範例區塊放的位置；沒有它時，範例區塊放在最前面。"
    ),
    "prompt_lab.manual_ids": "手動挑選的範例編號，依序排列（或點選下方的列）",
    "prompt_lab.pool_table": "訓練集（點一列即可加入）",
    # 思維鏈
    "prompt_lab.cot": "思維鏈（chain of thought）",
    "prompt_lab.trigger": "觸發句（放在提示詞最後）",
    "prompt_lab.worked": "示範解題（選填）：一道題目、觸發句，接著是推理過程與答案",
    # 試跑一題
    "prompt_lab.query": "測試題目",
    "prompt_lab.preview": "實際送給模型的文字",
    "prompt_lab.max_new": "最大新 token 數",
    "prompt_lab.try": "用這一題試跑",
    "prompt_lab.stop": "停止",
    "prompt_lab.answer": "回答（貪婪解碼）",
    "prompt_lab.try.starting": "開始中…",
    "prompt_lab.try.ends_at": " · 停在 {stops}",
    # 配方
    "prompt_lab.recipes": "提示詞配方",
    "prompt_lab.recipe_name": "配方名稱",
    "prompt_lab.save": "儲存",
    "prompt_lab.saved_recipes": "已儲存的配方",
    "prompt_lab.load": "載入",
    "prompt_lab.recipe.saved": "已儲存配方 **{name}**。",
    "prompt_lab.recipe.loaded": "已載入配方 **{name}**。",
    # 評估
    "prompt_lab.evaluate_section": "評估：在測試集上跑零樣本（zero-shot）和每個 k",
    "prompt_lab.metrics": "評估指標",
    "prompt_lab.ks": "k 值（一定會跑零樣本；留白 = 上面的 k）",
    "prompt_lab.seeds": "隨機種子（只用於隨機 k 個）",
    "prompt_lab.limit": "題數上限（前 N 題，0 = 全部）",
    "prompt_lab.evaluate": "評估",
    "prompt_lab.cancel": "取消",
    "prompt_lab.summary": "每個 k：各隨機種子的平均與標準差",
    "prompt_lab.chart_metric": "圖表指標",
    "prompt_lab.eval.no_test_set": "請先選擇測試集。",
    "prompt_lab.eval.no_metric": "請至少勾選一個評估指標。",
    "prompt_lab.eval.no_manual_ids": "請先手動挑選範例（或改用其他選法）。",
    "prompt_lab.eval.done": "**完成：** 在 {dataset} 上跑了 {runs} 次（每次 {questions} 題），結果已存到排行榜。",
    "prompt_lab.eval.cancelled": (
        "**已取消。** 已完成的保留下來：在 {dataset} 上跑了 {runs} 次（每次 {questions} 題），結果已存到排行榜。"
    ),
    "prompt_lab.eval.cancelling": "目前這個批次跑完後就取消…",
    "prompt_lab.summary.empty": "還沒有評估結果。",
    "prompt_lab.chart.empty": "執行評估後，這裡會畫出指標隨 k 的變化",
    "prompt_lab.chart.title": "{metric} 隨 k 的變化（{better}），各隨機種子的平均 ± 標準差；k=0 為零樣本",
    "prompt_lab.chart.lower": "越低越好",
    "prompt_lab.chart.higher": "越高越好",
    "prompt_lab.chart.x": "k（情境內範例數）",
    # 伺服器寫出的模型、題目與提示詞說明
    "prompt_lab.model.none": "**尚未載入模型。** 請在頁面上方載入一個（不載入也能預覽提示詞）。",
    "prompt_lab.model.line": "模型：**{name}** · 上下文長度 {context} 個 token（可在頁面上方更換）",
    "prompt_lab.query.line": "**題目編號 {id}** · 參考答案：{reference}",
    "prompt_lab.query.no_reference": "（無）",
    "prompt_lab.preview.no_model": (
        "{chars} 個字元 · **尚未載入模型**，所以無法計算 token 數（對話範本也只以純文字顯示）。"
        "請在頁面上方載入模型。"
    ),
    "prompt_lab.preview.tokens": "**{tokens} 個 token**（+ {new} 個新 token），上限 {context} · {count} 個範例：{ids}",
    "prompt_lab.preview.no_examples": "無",
}
