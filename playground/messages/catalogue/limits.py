"""The deployment's limits (playground/limits.py): what a request or a file may not exceed."""

EN = {
    "limits.new_tokens": "max new tokens is {asked}; this playground allows up to {most} per request.",
    "limits.train_steps": (
        "This job would run {steps} optimizer steps; this playground allows up to {most} per job. "
        "Lower max steps or epochs."
    ),
    "limits.rows": "{file} has {rows} rows; this playground reads up to {most}. Keep a smaller sample of it.",
}

ZH_TW = {
    "limits.new_tokens": "最大新 token 數為 {asked}；這個遊樂場每個請求最多允許 {most} 個。",
    "limits.train_steps": "這個訓練工作會跑 {steps} 個最佳化步驟；這個遊樂場每個工作最多允許 {most} 步。請降低最大步數或訓練輪數（epoch）。",
    "limits.rows": "{file} 有 {rows} 筆資料；這個遊樂場最多讀取 {most} 筆。請只保留其中一小部分樣本。",
}
