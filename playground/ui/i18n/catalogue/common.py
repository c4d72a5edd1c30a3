"""Words every tab shares: the page's frame, the language switch, error messages."""

EN = {
    "app.heading": "# LLM playground",
    "app.subtitle": "Compare instruction-tuned LLMs side by side: chat, prompts, decoding, adapters.",
    "app.language": "Language",
    "error.disk_full": (
        "The disk is full, so this could not be saved. Nothing saved before was changed: free some "
        "space (old adapters, checkpoints or uploads) and try again."
    ),
    "error.unexpected": "Unexpected error ({kind}). The details are in the server log.",
    "error.out_of_memory": (
        "Out of GPU memory during {where}. Try fewer max new tokens, fewer beams, a shorter prompt "
        "or a smaller batch, or load the model in 4-bit. The model is still loaded and usable."
    ),
}

ZH_TW = {
    "app.heading": "# LLM 遊樂場",
    "app.subtitle": "並排比較指令微調的大型語言模型：對話、提示詞、解碼設定、轉接器（adapter）。",
    "app.language": "語言",
    "error.disk_full": "磁碟空間已滿，無法儲存。先前儲存的內容都沒有變動：請清出一些空間（舊的轉接器、檢查點或上傳檔案）後再試一次。",
    "error.unexpected": "發生非預期的錯誤（{kind}）。詳細資訊記錄在伺服器日誌中。",
    "error.out_of_memory": (
        "執行{where}時 GPU 記憶體不足。請減少最大新 token 數、束搜尋數量，縮短提示詞或批次大小，"
        "或改用 4-bit 載入模型。模型仍在記憶體中，可以繼續使用。"
    ),
}
