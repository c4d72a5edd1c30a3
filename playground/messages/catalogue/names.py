"""Names users give to things kept on disk (playground/names.py)."""

EN = {
    "names.invalid": (
        "{shown} cannot be a {what} name: use letters, digits, spaces, '-', '_' or '.' "
        "(up to 100 characters, no '/' or '..')."
    ),
    "names.outside": "{shown} cannot be a {what} name here: it points outside its folder.",
    "names.thing.adapter": "adapter",
    "names.thing.recipe": "recipe",
    "names.thing.job": "job",
    "names.thing.export": "export",
    "names.thing.file": "file",
}

ZH_TW = {
    "names.invalid": (
        "{shown} 不能當作{what}名稱：請使用字母、數字、空格、'-'、'_' 或 '.'（最多 100 個字元，不可有 '/' 或 '..'）。"
    ),
    "names.outside": "{shown} 不能當作這裡的{what}名稱：它指向資料夾以外的位置。",
    "names.thing.adapter": "轉接器",
    "names.thing.recipe": "提示詞配方",
    "names.thing.job": "訓練工作",
    "names.thing.export": "匯出檔",
    "names.thing.file": "檔案",
}
