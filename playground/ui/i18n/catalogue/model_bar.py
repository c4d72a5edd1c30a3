"""The model bar at the top of the page, and the page's frame: tab labels, deployment note, login."""

from playground.models.loader import DESCRIPTION, EXTERNAL_DESCRIPTION

EN = {
    "app.tab.chat": "Chat",
    "app.tab.prompt_lab": "Prompt lab",
    "app.tab.compare": "Side by side",
    "app.tab.training": "Training",
    "app.tab.leaderboard": "Leaderboard",
    "app.deployment.single": (
        "_Single-user playground: no login, reachable from this machine only. To share it, set "
        'PLAYGROUND_AUTH (see the README\'s "Sharing it")._'
    ),
    "app.deployment.anonymous": (
        "_Shared without login: your browser tab owns what you create here, and models cannot be "
        "switched. Set PLAYGROUND_AUTH for named accounts._"
    ),
    "app.deployment.login": "_Shared playground: you see everyone's results; you change only what you created._",
    "app.auth_message": "This playground is shared: log in with the account you were given.",
    "model_bar.model": "Model (preset, Hugging Face id, or a folder in the models folder)",
    "model_bar.precision": "Precision",
    "model_bar.precision.info": (
        "auto = 4bit NF4 on a GPU (what QLoRA uses); int4 = faster 4-bit for chat and "
        "comparisons, without adapters."
    ),
    "model_bar.precision.4bit": "4bit (NF4)",
    "model_bar.precision.int4": "int4 (fast 4-bit)",
    "model_bar.load": "Load",
    "model_bar.adapter": "Adapter for your chat (trained adapters in adapters/)",
    "model_bar.adapter.none": "(none)",
    "model_bar.refresh": "Refresh adapters",
    # Messages the server fills in.
    "model_bar.no_model": "**No model loaded.** Pick one and press Load.",
    "model_bar.loaded": "**Loaded:** {model}",
    "model_bar.model_summary": DESCRIPTION,
    "model_bar.model_summary_external": EXTERNAL_DESCRIPTION,
    "model_bar.gpu_memory": "- GPU memory: {used} / {total} GiB",
    "model_bar.external_engine": "- Generation runs on the external engine at {url} (PLAYGROUND_ENGINE_URL).",
    "model_bar.chat_adapter": "- Your chat uses adapter **{name}**.",
    "model_bar.resident": "- Also in memory: {models}",
    "model_bar.resident.model": "{name} ({memory} on {device})",
    "model_bar.resident.alone": "- In memory: {memory} on {device}",
    "model_choice.bar": "the model bar's model",
}

ZH_TW = {
    "app.tab.chat": "對話",
    "app.tab.prompt_lab": "提示詞實驗室",
    "app.tab.compare": "並排比較",
    "app.tab.training": "訓練",
    "app.tab.leaderboard": "排行榜",
    "app.deployment.single": (
        "_單人使用的遊樂場：不需登入，只有這台電腦連得到。要分享給別人，請設定 PLAYGROUND_AUTH"
        "（見 README 的「Sharing it」）。_"
    ),
    "app.deployment.anonymous": (
        "_未登入的共用遊樂場：你在這裡建立的東西屬於你的瀏覽器分頁，也無法切換模型。"
        "要使用具名帳號，請設定 PLAYGROUND_AUTH。_"
    ),
    "app.deployment.login": "_共用的遊樂場：你看得到每個人的結果，但只能修改自己建立的東西。_",
    "app.auth_message": "這個遊樂場是共用的：請用發給你的帳號登入。",
    "model_bar.model": "模型（預設選項、Hugging Face id，或 models 資料夾裡的資料夾）",
    "model_bar.precision": "精度",
    "model_bar.precision.info": (
        "auto = 在 GPU 上用 4bit NF4（QLoRA 用的格式）；int4 = 較快的 4-bit，適合對話與比較，"
        "但不能搭配轉接器。"
    ),
    "model_bar.precision.4bit": "4bit（NF4）",
    "model_bar.precision.int4": "int4（快速 4-bit）",
    "model_bar.load": "載入",
    "model_bar.adapter": "你的對話使用的轉接器（adapters/ 裡訓練好的轉接器）",
    "model_bar.adapter.none": "（無）",
    "model_bar.refresh": "重新整理轉接器清單",
    "model_bar.no_model": "**尚未載入模型。** 請選一個模型後按「載入」。",
    "model_bar.loaded": "**已載入：** {model}",
    "model_bar.model_summary_external": (
        "{name}，由外部引擎 {engine} 生成（這裡只載入分詞器與設定，沒有權重；那邊有 {parameters}M 個參數），"
        "上下文長度 {context} 個 token，載入花了 {seconds} 秒"
    ),
    "model_bar.model_summary": (
        "{name}，在 {device} 上（{precision}），{parameters}M 個參數，上下文長度 {context} 個 token，"
        "載入花了 {seconds} 秒"
    ),
    "model_bar.gpu_memory": "- GPU 記憶體：{used} / {total} GiB",
    "model_bar.external_engine": "- 文字生成交由外部推論引擎 {url} 執行（PLAYGROUND_ENGINE_URL）。",
    "model_bar.chat_adapter": "- 你的對話使用轉接器 **{name}**。",
    "model_bar.resident": "- 記憶體中的其他模型：{models}",
    "model_bar.resident.model": "{name}（{device} 上佔 {memory}）",
    "model_bar.resident.alone": "- 記憶體：{device} 上佔 {memory}",
    "model_choice.bar": "上方模型列的模型",
}
