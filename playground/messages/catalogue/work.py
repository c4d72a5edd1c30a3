"""Work that stopped because the user asked for it (playground.errors.Cancelled)."""

EN = {
    "cancelled": "Cancelled.",
    "cancelled.stopped": "Stopped.",
    "cancelled.evaluation": "Evaluation cancelled.",
}

ZH_TW = {
    "cancelled": "已取消。",
    "cancelled.stopped": "已停止。",
    "cancelled.evaluation": "評估已取消。",
}
